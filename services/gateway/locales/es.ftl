# Las palabras de la pasarela en español. Cada mensaje tiene su par en
# en.ftl (una prueba comprueba que ambos archivos tienen los mismos ids).

## Todas las páginas
language-label = Idioma
search-label = Buscar
search-button = Buscar
search-placeholder-all = Buscar en todos los movimientos
search-placeholder-network = Buscar en esta red

## Errores
status-400 = Solicitud no válida
status-401 = Sin sesión iniciada
status-403 = No permitido
status-404 = No encontrado
status-410 = Ya no está disponible
status-413 = Demasiado grande
status-429 = Demasiadas solicitudes
status-500 = Algo salió mal
status-502 = Servicio no disponible
status-503 = Servicio no disponible
status-other = Error
error-no-page = Esta página no existe.
error-no-post = Esta entrada no existe.
error-no-thread = Esta conversación no existe.
error-no-event = Este evento no existe.
error-no-event-here = Este evento no existe aquí.
error-unavailable = El servicio no está disponible en este momento. Inténtalo de nuevo.
error-not-shown = No se pudo mostrar la página.
error-other-site = Este formulario se envió desde otro sitio.
error-retracted = Su sitio retiró esta entrada.
error-retracted-because = Su sitio retiró esta entrada: { $reason }
back-home = Volver a la portada

## Novedades: la red de redes, una red, un sitio, una etiqueta, un idioma
umbrella-description = Lo que hace cada movimiento de esta red.
movements-heading = Movimientos
sites-heading = Sitios
pages-label = Páginas
directory-heading = Directorio
directory-browse = Ver los { $total } sitios →
upcoming-heading = Próximos eventos
upcoming-in = Próximos eventos · { $place }
nothing-planned = Todavía no hay nada previsto.
all-events = Todos los eventos →
discussions-heading = Conversaciones
social-heading = De nuestras redes sociales
latest-posts-label = Últimas entradas
nothing-posted = Todavía no se ha publicado nada aquí.
older-posts = Entradas anteriores →
atom-feed = Canal Atom
json-feed = JSON Feed
posts-in-language = Entradas en { $code ->
    [en] inglés
    [es] español
   *[other] { $code }
}
board = tablón

## Tipos de documentos
kind-post = entrada
kind-page = página
kind-thread = conversación
kind-event = evento
kind-site = sitio
kinds-post = entradas
kinds-page = páginas
kinds-thread = conversaciones
kinds-event = eventos
kinds-site = sitios

## Idiomas de los documentos
lang-en = Inglés
lang-es = Español

## Búsqueda
search-heading = Buscar
search-title = { $query } – Buscar
filter-what = Qué
filter-everything = todo
filter-from = Desde
filter-to = Hasta
filter-order = Orden
order-relevance = más relevantes
order-date = más recientes
filter-button = Filtrar
search-summary = { $count ->
    [one] { $total } resultado
   *[other] { $total } resultados
} para «{ $query }»
search-summary-in = { $count ->
    [one] { $total } resultado
   *[other] { $total } resultados
} para «{ $query }» en { $scope }
facets-label = Afinar los resultados
facet-network = Redes
facet-site = Sitios
facet-kind = Tipos
facet-tag = Etiquetas
facet-lang = Idiomas
facet-estimated = estimado a partir de una muestra de los resultados
badge-network-members = miembros de la red
badge-site-members = miembros del sitio
search-none = No hay resultados. Prueba con menos palabras o con otras.
first-page = Primera página
more-results = Más resultados
search-follow = Seguir esta búsqueda en un lector de noticias:
search-help-label = Cómo buscar
search-help-intro = Busca a la vez en las entradas, páginas, conversaciones, eventos y sitios de todos los movimientos.
search-help-words-example = vivienda alquiler
search-help-words = tienen que aparecer todas las palabras
search-help-phrase-example = huelga de alquileres
search-help-phrase = las palabras juntas, en este orden
search-help-exclude-example = desalojo
search-help-exclude = deja fuera lo que tenga esta palabra
search-help-typos = Los acentos no importan (organizacion encuentra organización) y una palabra larga con una errata sigue encontrando lo que buscabas. Quien inicia sesión encuentra también lo que es solo para sus grupos.

## Entradas y conversaciones
replies-label = Respuestas
thread-closed = Esta conversación está cerrada a nuevas respuestas.
reply-hidden = Ocultada por la moderación.

## Eventos y calendarios
calendar-heading = Calendario
calendar-title = Calendario { $month } – { $site }
calendar-month = { $month } de { $year }
month-previous = ← anterior
month-next = siguiente →
calendar-subscribe = suscribirse (.ics)
ics-subscribe = Suscribirse desde tu aplicación de calendario (.ics)
this-month = Este mes
nothing-this-month = No hay nada previsto este mes.
all-day = todo el día
cancelled = cancelado
later = Más adelante →
event-cancelled = Este evento está cancelado.
date-cancelled = esta fecha está cancelada
hosted-by = Organiza
online = En línea:
rsvp-going = { $going ->
    [one] { $going } asistente
   *[other] { $going } asistentes
}
rsvp-going-of = { $going ->
    [one] { $going } asistente
   *[other] { $going } asistentes
} de { $capacity } plazas
rsvp-waitlisted = { $waitlisted } en lista de espera
rsvp-you-are-going = Vas a asistir.
rsvp-waitlist-position = Eres el número { $position } de la lista de espera.
rsvp-cant-go = No puedo ir
rsvp-im-going = Voy a ir
rsvp-sign-in = Inicia sesión para decir que vas
add-to-calendar = Añadir a mi calendario (.ics)
next-dates = Próximas fechas
month-1 = enero
month-2 = febrero
month-3 = marzo
month-4 = abril
month-5 = mayo
month-6 = junio
month-7 = julio
month-8 = agosto
month-9 = septiembre
month-10 = octubre
month-11 = noviembre
month-12 = diciembre
weekday-1 = lun
weekday-2 = mar
weekday-3 = mié
weekday-4 = jue
weekday-5 = vie
weekday-6 = sáb
weekday-7 = dom

## El directorio de sitios
directory-count = { $total ->
    [one] { $total } sitio
   *[other] { $total } sitios
}
directory-tagged = con la etiqueta
directory-intro = Encuentra un grupo cerca de ti o que trabaje en lo que te importa.
filter-movement = Movimiento
filter-all = Todos
filter-issue = Tema
filter-language = Idioma
filter-any = Cualquiera
filter-country = País
filter-city = Ciudad
invite-only = solo con invitación
directory-none = Ningún sitio coincide con estos filtros.
more-sites = Más sitios →
directory-geojson = GeoJSON de estos sitios
map-label = Mapa de { $count } sitios con ubicación

## Iniciar sesión
sign-in = Iniciar sesión
email = Correo electrónico
password = Contraseña
sign-in-failed = Ese correo y esa contraseña no corresponden a ninguna cuenta.
