# Real HTML for benchmarks: Debian's documentation packages (python3.11-doc,
# postgresql-doc-15) replicated under COPIES path prefixes, served by
# Debian's nginx on loopback. Sourced by bench scripts:
#
#   source bench/docsite.sh
#   docsite_start "$WORK" 19 python,postgresql   # sets DOCSITE_URL
#   docsite_access_log                            # this nginx's access log
#   docsite_restart                               # a fresh access log
#
# Each copy is a symlink to the package's HTML (links in it are relative,
# so every copy is a self-contained site of its own); the index links to
# every copy's entry page.

docsite_need() {
  local need=()
  [ -d /usr/share/doc/python3.11/html ] || need+=(python3.11-doc)
  [ -d /usr/share/doc/postgresql-doc-15/html ] || need+=(postgresql-doc-15)
  [ -x /usr/sbin/nginx ] || need+=(nginx-light)
  [ -x /usr/bin/time ] || need+=(time)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# docsite_start WORK COPIES DOCS: DOCS is a comma list of python, postgresql.
docsite_start() {
  DOCSITE_WORK="$1"
  local copies="$2" docs="$3" i name dir entry
  docsite_need
  chmod 755 "$DOCSITE_WORK"
  local site="$DOCSITE_WORK/site"
  mkdir -p "$site" "$DOCSITE_WORK/tmp"
  {
    echo '<!doctype html><html lang="en"><title>Documentation copies</title><ul>'
    for i in $(seq 0 $((copies - 1))); do
      for name in ${docs//,/ }; do
        case "$name" in
          python) dir=/usr/share/doc/python3.11/html ;;
          postgresql) dir=/usr/share/doc/postgresql-doc-15/html ;;
          *) echo "unknown docs $name" >&2; return 1 ;;
        esac
        ln -s "$dir" "$site/$name$i"
        echo "<li><a href=\"$name$i/index.html\">$name copy $i</a></li>"
      done
    done
    echo '</ul></html>'
  } >"$site/index.html"
  DOCSITE_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  cat >"$DOCSITE_WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $DOCSITE_WORK/nginx.pid;
error_log $DOCSITE_WORK/error.log;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  log_format page '\$status \$body_bytes_sent \$sent_http_content_type \$request_uri';
  access_log $DOCSITE_WORK/access.log page buffer=256k;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $DOCSITE_WORK/tmp;
  proxy_temp_path $DOCSITE_WORK/tmp;
  fastcgi_temp_path $DOCSITE_WORK/tmp;
  uwsgi_temp_path $DOCSITE_WORK/tmp;
  scgi_temp_path $DOCSITE_WORK/tmp;
  server { listen 127.0.0.1:$DOCSITE_PORT; root $site; }
}
CONF
  DOCSITE_URL="http://127.0.0.1:$DOCSITE_PORT/index.html"
  docsite_restart
}

docsite_stop() {
  if [ -n "${DOCSITE_NGINX:-}" ]; then
    kill "$DOCSITE_NGINX" 2>/dev/null || true
    wait "$DOCSITE_NGINX" 2>/dev/null || true
    DOCSITE_NGINX=""
  fi
}

# A fresh nginx and access log (one per measured run).
docsite_restart() {
  docsite_stop
  rm -f "$DOCSITE_WORK/access.log"
  /usr/sbin/nginx -c "$DOCSITE_WORK/nginx.conf" -p "$DOCSITE_WORK" &
  DOCSITE_NGINX=$!
  local _
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$DOCSITE_URL" && return 0
    sleep 0.05
  done
  echo "nginx does not serve $DOCSITE_URL" >&2
  return 1
}

docsite_access_log() {
  docsite_stop  # flushes the buffered log
  echo "$DOCSITE_WORK/access.log"
}
