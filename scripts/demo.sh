#!/usr/bin/env bash
# `make run`: the first time, initialises ./demo (config, data, a
# self-signed certificate, the domain example.test and the account
# demo@example.test with a generated password); then serves in the
# foreground on the demo ports.
set -euo pipefail
yubin=$1
dir=$2
conf=$dir/yubin.conf
pwfile=$dir/demo-password.txt

if [[ ! -f "$conf" ]]; then
	"$yubin" init "$dir" --domain example.test --hostname localhost
	password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
	printf '%s\n' "$password" | "$yubin" -c "$conf" user add demo@example.test --name "Demo User"
	(umask 077; printf '%s\n' "$password" > "$pwfile")
	printf 'Subject: Welcome to yubin\r\nFrom: postmaster@example.test\r\nTo: demo@example.test\r\n\r\nThis is your first message.\r\n' \
		| "$yubin" -c "$conf" deliver demo@example.test
fi
password=$(cat "$pwfile")

cat <<MSG

yubin demo — data in $dir/, config $conf
  account   demo@example.test   password $password
  POP3      127.0.0.1:2110 (STLS)       POP3S  127.0.0.1:2995 (TLS)
  IMAP      127.0.0.1:2143 (STARTTLS)   IMAPS  127.0.0.1:2993 (TLS)
  SMTP (MX) 127.0.0.1:2525 (STARTTLS offered)
  submission 127.0.0.1:2587 (STARTTLS, then AUTH)   127.0.0.1:2465 (TLS)
  certificate: self-signed for localhost ($dir/data/tls/cert.pem)

  curl:        curl -k --ssl-reqd pop3://127.0.0.1:2110/ -u 'demo@example.test:$password'
               curl -k pop3s://127.0.0.1:2995/1 -u 'demo@example.test:$password'
               curl -k imaps://127.0.0.1:2993/INBOX -u 'demo@example.test:$password'
               curl -k 'imaps://127.0.0.1:2993/INBOX;UID=1' -u 'demo@example.test:$password'
  Thunderbird: incoming POP3, server 127.0.0.1, port 2995, SSL/TLS, normal password,
               user demo@example.test (accept the self-signed certificate)
  mutt:        mutt -f 'pops://demo%40example.test@127.0.0.1:2995/'
               mutt -f 'imaps://demo%40example.test@127.0.0.1:2993/INBOX'
  more mail:   echo 'Subject: hi' | $yubin -c $conf deliver demo@example.test
               swaks --server 127.0.0.1:2525 --to demo@example.test
               swaks --server 127.0.0.1:2465 --tls-on-connect --auth PLAIN \\
                     --auth-user demo@example.test --auth-password '$password' \\
                     --from demo@example.test --to demo@example.test

Serving in the foreground; Ctrl-C stops.
MSG
exec "$yubin" -c "$conf" serve
