#!/usr/bin/env bash
# A small demo: two networks, a few sites, posts in English and Spanish.
# Runs once per database: posts are only added when a network is new.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ctl() { "$ROOT/target/debug/anpctl" "$@"; }

onboard() { # slug name -> prints "new" when created now
  ctl network onboard "$1" --name "$2" --idempotency-key "demo-$1" | grep -q '^onboarded' && echo new || true
}

site() { ctl site create "$1" --name "$2" >/dev/null 2>&1 || true; }

if [ "$(onboard climate-justice 'Climate Justice')" = new ]; then
  site climate-justice/new-york "New York"
  site climate-justice/new-mexico "New Mexico"
  site climate-justice/madrid "Madrid"
  ctl post publish climate-justice/new-york --title "Rally for a Green New Deal at City Hall" \
    --body $'We gather **Saturday at noon** on the steps of City Hall.\n\nBring signs, water and a friend. Organizers from New Mexico join us by video.' >/dev/null
  ctl post publish climate-justice/new-mexico --title "Water protectors meet in Albuquerque" \
    --body $'Our monthly meeting is about the new pipeline permits.\n\n- carpools from Santa Fe\n- childcare on site' >/dev/null
  ctl post publish climate-justice/madrid --lang es --title "Marcha por el clima en Madrid" \
    --body $'Las organizaciones vecinales convocan una **marcha** el domingo desde Atocha.\n\nTraed pancartas y agua.' >/dev/null
  echo "seeded climate-justice"
fi

if [ "$(onboard migrant-rights 'Migrant Rights')" = new ]; then
  site migrant-rights/boston "Boston"
  site migrant-rights/arts "Arts"
  ctl post publish migrant-rights/boston --title "Know your rights: workshop on Thursday" \
    --body $'Volunteer lawyers explain what to do if immigration agents come to your door.\n\nInterpretation in Spanish and Haitian Creole.' >/dev/null
  ctl post publish migrant-rights/boston --lang es --title "Taller: conoce tus derechos" \
    --body $'Abogadas voluntarias explican qué hacer si agentes de inmigración llegan a tu puerta.' >/dev/null
  ctl post publish migrant-rights/arts --title "Murals of welcome: call for artists" \
    --body $'We are painting three murals this spring. Sketches are due by the end of the month.' >/dev/null
  echo "seeded migrant-rights"
fi
