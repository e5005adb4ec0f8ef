#!/bin/sh
# The mysqld exporter's MariaDB account: its system user `prometheus`
# through the local socket (unix_socket authentication), so no password
# exists to leak. Read-only: what the exporter's collectors query.
set -eu
mariadb -e "CREATE USER IF NOT EXISTS 'prometheus'@'localhost' IDENTIFIED VIA unix_socket; GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO 'prometheus'@'localhost'"
