#!/usr/bin/env bash
# notify.sh — systemd notification from the frontend (tests/frontend/notify.py plays systemd).
source "$(dirname "$0")/../helpers/frontend.sh"
make_model
python3 tests/frontend/notify.py "$BUILD/pdserve-frontend" "$MODEL" "$HTTP_PORT" "$UCX_PORT"
