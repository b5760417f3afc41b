"""One module of routes per resource; `talktime.api.app` includes each router."""
