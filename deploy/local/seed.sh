#!/usr/bin/env bash
# A small demo: two networks, each with its admin account, a few sites with
# places and tags, posts in English and Spanish, a page, a public discussion
# and a post shared from one network into the other; a weekly clinic with
# places, co-hosted by a site of the other network. Runs once per database:
# nothing is added to a network that already exists.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ANP_HOME=${ANP_HOME:-$ROOT/.anp}
ctl() { "$ROOT/target/debug/anpctl" "$@"; }

if [ ! -s "$ANP_HOME/demo-password" ]; then
  (umask 077; printf 'demo-%s' "$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$ANP_HOME/demo-password")
fi
export ANP_PASSWORD=$(cat "$ANP_HOME/demo-password")
mkdir -p "$ANP_HOME/demo"

# onboard slug name: onboards the network, signs its admin up and makes the
# admin's session current; prints "new" when the network is new.
onboard() {
  local out token
  out=$(ctl network onboard "$1" --name "$2" --admin-email "admin@$1.example.org" \
    --plan standard --idempotency-key "demo-$1")
  grep -q '^onboarded' <<<"$out" || return 0
  token=$(sed -n 's/.*anpctl member accept //p' <<<"$out")
  export ANP_SESSION_FILE=$ANP_HOME/demo/$1.session
  ctl account signup --email "admin@$1.example.org" --display-name "$2 admin" >/dev/null
  ctl member accept "$token" >/dev/null
  echo new
}

site() { ctl site create "$@" >/dev/null; }

if [ "$(onboard climate-justice 'Climate Justice')" = new ]; then
  export ANP_SESSION_FILE=$ANP_HOME/demo/climate-justice.session
  site climate-justice/new-york --name "New York" --tags climate,energy --city "New York" --country US --lat 40.71 --lon -74.01
  site climate-justice/new-mexico --name "New Mexico" --tags climate,water --city Albuquerque --country US --lat 35.08 --lon -106.65
  site climate-justice/madrid --name "Madrid" --tags climate --languages es,en --city Madrid --country ES --lat 40.42 --lon -3.70
  ctl post publish climate-justice/new-york --title "Rally for a Green New Deal at City Hall" \
    --body $'We gather **Saturday at noon** on the steps of City Hall.\n\nBring signs, water and a friend. Organizers from New Mexico join us by video.' >/dev/null
  ctl post publish climate-justice/new-mexico --title "Water protectors meet in Albuquerque" --tag water \
    --body $'Our monthly meeting is about the new pipeline permits.\n\n- carpools from Santa Fe\n- childcare on site' \
    | cut -f1 >"$ANP_HOME/demo/water-post"
  ctl post publish climate-justice/madrid --lang es --title "Marcha por el clima en Madrid" \
    --body $'Las organizaciones vecinales convocan una **marcha** el domingo desde Atocha.\n\nTraed pancartas y agua.' >/dev/null
  echo "seeded climate-justice"
fi

if [ "$(onboard migrant-rights 'Migrant Rights')" = new ]; then
  export ANP_SESSION_FILE=$ANP_HOME/demo/migrant-rights.session
  site migrant-rights/boston --name "Boston" --tags migration,labor --languages en,es --city Boston --country US --lat 42.36 --lon -71.06 --join invite-only
  site migrant-rights/arts --name "Arts" --tags migration,arts
  ctl post publish migrant-rights/boston --title "Know your rights: workshop on Thursday" \
    --body $'Volunteer lawyers explain what to do if immigration agents come to your door.\n\nInterpretation in Spanish and Haitian Creole.' >/dev/null
  ctl post publish migrant-rights/boston --lang es --title "Taller: conoce tus derechos" \
    --body $'Abogadas voluntarias explican qué hacer si agentes de inmigración llegan a tu puerta.' >/dev/null
  ctl post publish migrant-rights/arts --title "Murals of welcome: call for artists" \
    --body $'We are painting three murals this spring. Sketches are due by the end of the month.' >/dev/null
  ctl page create migrant-rights/boston --slug about --title "About us" \
    --body $'We are neighbours, workers and families defending the rights of migrants in Boston.\n\nWe meet every Monday.' >/dev/null
  ctl thread start migrant-rights/boston --public --title "Rides to the workshop" \
    --body "Who can offer a ride on Thursday? Reply here." >/dev/null
  clinic_start="$(date -u -d 'next tuesday' +%Y-%m-%d)T18:30"
  ctl event schedule migrant-rights/boston --title "Know your rights clinic" --time-zone America/New_York \
    --start "$clinic_start" --minutes 90 --rrule "FREQ=WEEKLY;BYDAY=TU;COUNT=12" --capacity 30 \
    --venue "Community center" --address "25 Centre St, Boston" | cut -f1 >"$ANP_HOME/demo/clinic-event"
  ctl event rsvp "$(cat "$ANP_HOME/demo/clinic-event")" --at "$clinic_start" >/dev/null
  # Co-hosted with a site of the other network, which accepts.
  if [ -s "$ANP_HOME/demo/climate-justice.session" ]; then
    ctl event cohost "$(cat "$ANP_HOME/demo/clinic-event")" climate-justice/new-york >/dev/null
    ANP_SESSION_FILE=$ANP_HOME/demo/climate-justice.session \
      ctl event cohost-answer "$(cat "$ANP_HOME/demo/clinic-event")" climate-justice/new-york >/dev/null
  fi
  # Publish once, appear everywhere: the water meeting also in Arts.
  if [ -s "$ANP_HOME/demo/water-post" ]; then
    ctl post share "$(cat "$ANP_HOME/demo/water-post")" migrant-rights/arts >/dev/null
  fi
  echo "seeded migrant-rights"
fi
