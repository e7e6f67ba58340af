"""PhotoSky benchmarks: `make bench` (or `python -m bench [--quick]`) measures PhotoSky against its peers and
the limits in one run and writes docs/PERFORMANCE.md. Never imported by the app; never packaged for Lambda."""
