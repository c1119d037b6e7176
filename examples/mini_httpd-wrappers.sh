#!/bin/sh
# Makes the web root that examples/mini_httpd.conf serves: one small wrapper per path
# of docs/http.md, an index.html that sends / on to /inbox, and static/ with the
# stylesheet. mini_httpd maps a URL path to the file of that name in its web root and
# runs it as a CGI program when the name matches `cgipat`; it has no aliases and
# passes no environment of its own, hence the wrappers.
#
# Usage: mini_httpd-wrappers.sh WEBROOT CGI_BIN STATIC_DIR CONFIG
#   WEBROOT     the directory mini_httpd serves (its `dir`), created if missing
#   CGI_BIN     where the *.cgi programs are (e.g. /usr/local/lib/webmailkey/cgi-bin)
#   STATIC_DIR  cgi/static of the source (e.g. /usr/local/share/webmailkey/static)
#   CONFIG      the webmailkey config the programs read
set -eu
[ $# -eq 4 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
WEBROOT=$1 CGI_BIN=$2 STATIC_DIR=$3 CONFIG=$4
case "$CGI_BIN$CONFIG" in
  *"'"*) echo "mini_httpd-wrappers.sh: paths with a single quote are not supported" >&2; exit 2 ;;
esac
mkdir -p "$WEBROOT/static"
for p in login inbox message decrypt unlock stop-other compose attachment keys lock logout; do
  tmp="$WEBROOT/.$p.tmp"
  cat >"$tmp" <<WRAPPER
#!/bin/sh
# /$p → $CGI_BIN/$p.cgi. mini_httpd listens on loopback behind a TLS terminator and
# does not tell CGI programs about TLS: a request from the loopback address came
# through the terminator, so it is HTTPS; anything else is plain HTTP and refused.
case "\$REMOTE_ADDR" in
  127.0.0.1 | ::1) HTTPS=on; export HTTPS ;;
  *) unset HTTPS ;;
esac
WEBMAILKEY_CONFIG='$CONFIG'
export WEBMAILKEY_CONFIG
exec '$CGI_BIN/$p.cgi'
WRAPPER
  chmod 755 "$tmp"
  mv "$tmp" "$WEBROOT/$p"
done
# mini_httpd looks up index.html for /; it cannot run a CGI program there.
cat >"$WEBROOT/index.html" <<'INDEX'
<!doctype html>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0; url=/inbox">
<title>webmailkey</title>
<a href="/inbox">webmailkey</a>
INDEX
cp "$STATIC_DIR"/* "$WEBROOT/static/"
echo "mini_httpd web root ready in $WEBROOT"
