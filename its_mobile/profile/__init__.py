"""`its-mobile profile`: numbers to pick a backend and a tier by, on this machine and on phones."""
