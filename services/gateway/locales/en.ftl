# The gateway's words in English. Every message here has a Spanish
# counterpart in es.ftl (a unit test checks both files hold the same ids).

## Every page
language-label = Language
search-label = Search
search-button = Search
search-placeholder-all = Search all movements
search-placeholder-network = Search this network

## Errors
status-400 = Bad request
status-401 = Not signed in
status-403 = Not allowed
status-404 = Not found
status-410 = Gone
status-413 = Too large
status-429 = Too many requests
status-500 = Something went wrong
status-502 = Service unavailable
status-503 = Service unavailable
status-other = Error
error-no-page = There is no such page.
error-no-post = There is no such post.
error-no-thread = There is no such thread.
error-no-event = There is no such event.
error-no-event-here = There is no such event here.
error-unavailable = The service is not available right now. Please try again.
error-not-shown = The page could not be shown.
error-other-site = This form was sent from another site.
error-retracted = This post was retracted by its site.
error-retracted-because = This post was retracted by its site: { $reason }
back-home = Back to the front page

## Feeds: the umbrella, a network, a site, a tag, a language
umbrella-description = What every movement on this network is doing.
movements-heading = Movements
sites-heading = Sites
pages-label = Pages
directory-heading = Directory
directory-browse = Browse all { $total } sites →
upcoming-heading = Upcoming events
upcoming-in = Upcoming events · { $place }
nothing-planned = Nothing planned yet.
all-events = All events →
discussions-heading = Discussions
social-heading = From our social accounts
latest-posts-label = Latest posts
nothing-posted = Nothing has been posted here yet.
older-posts = Older posts →
atom-feed = Atom feed
json-feed = JSON Feed
posts-in-language = Posts in { $code ->
    [en] English
    [es] Spanish
   *[other] { $code }
}
board = board

## Kinds of documents
kind-post = post
kind-page = page
kind-thread = discussion
kind-event = event
kind-site = site
kinds-post = posts
kinds-page = pages
kinds-thread = discussions
kinds-event = events
kinds-site = sites

## Languages of documents
lang-en = English
lang-es = Spanish

## Search
search-heading = Search
search-title = { $query } – Search
filter-what = What
filter-everything = everything
filter-from = From
filter-to = To
filter-order = Order
order-relevance = best match
order-date = newest
filter-button = Filter
search-summary = { $count ->
    [one] { $total } result
   *[other] { $total } results
} for “{ $query }”
search-summary-in = { $count ->
    [one] { $total } result
   *[other] { $total } results
} for “{ $query }” in { $scope }
facets-label = Narrow the results
facet-network = Networks
facet-site = Sites
facet-kind = Kinds
facet-tag = Tags
facet-lang = Languages
facet-estimated = estimated from a sample of the results
badge-network-members = network members
badge-site-members = site members
search-none = No results. Try fewer or different words.
first-page = First page
more-results = More results
search-follow = Follow this search in a feed reader:
search-help-label = How to search
search-help-intro = Search every movement's posts, pages, discussions, events and sites at once.
search-help-words-example = housing rent
search-help-words = every word must be there
search-help-phrase-example = rent strike
search-help-phrase = the words side by side, in this order
search-help-exclude-example = eviction
search-help-exclude = leave out what has this word
search-help-typos = Accents do not matter (organizacion finds organización), and a longer word with a typo still finds what you meant. Members who sign in also find what is only for their groups.

## Posts and discussions
replies-label = Replies
thread-closed = This discussion is closed to replies.
reply-hidden = Hidden by the moderators.

## Events and calendars
calendar-heading = Calendar
calendar-title = Calendar { $month } – { $site }
calendar-month = { $month } { $year }
month-previous = ← previous
month-next = next →
calendar-subscribe = subscribe (.ics)
ics-subscribe = Subscribe in your calendar app (.ics)
this-month = This month
nothing-this-month = Nothing planned this month.
all-day = all day
cancelled = cancelled
later = Later →
event-cancelled = This event is cancelled.
date-cancelled = this date is cancelled
hosted-by = Hosted by
online = Online:
rsvp-going = { $going } going
rsvp-going-of = { $going } going of { $capacity } places
rsvp-waitlisted = { $waitlisted } on the waitlist
rsvp-you-are-going = You are going.
rsvp-waitlist-position = You are number { $position } on the waitlist.
rsvp-cant-go = I can't go
rsvp-im-going = I'm going
rsvp-sign-in = Sign in to say you are going
add-to-calendar = Add to my calendar (.ics)
next-dates = Next dates
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December
weekday-1 = Mon
weekday-2 = Tue
weekday-3 = Wed
weekday-4 = Thu
weekday-5 = Fri
weekday-6 = Sat
weekday-7 = Sun

## The directory of sites
directory-count = { $total ->
    [one] { $total } site
   *[other] { $total } sites
}
directory-tagged = tagged
directory-intro = Find a group near you or working on what you care about.
filter-movement = Movement
filter-all = All
filter-issue = Issue
filter-language = Language
filter-any = Any
filter-country = Country
filter-city = City
invite-only = invite-only
directory-none = No site matches these filters.
more-sites = More sites →
directory-geojson = GeoJSON of these sites
map-label = Map of { $count } located sites

## Signing in
sign-in = Sign in
email = Email
password = Password
sign-in-failed = That email and password do not match an account.
