#!/bin/sh
# What mysql_secure_installation does, without questions: root only through
# the unix socket (no password, nothing else), no anonymous users, no
# remote root, no test database.
set -eu
mariadb <<'SQL'
DELETE FROM mysql.global_priv WHERE User='';
DELETE FROM mysql.global_priv WHERE User='root' AND Host <> 'localhost';
DROP DATABASE IF EXISTS test;
DELETE FROM mysql.db WHERE Db LIKE 'test%';
FLUSH PRIVILEGES;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket;
FLUSH PRIVILEGES;
SQL
