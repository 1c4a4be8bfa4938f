#!/bin/sh
# First start of an empty data directory only (docker-entrypoint-initdb.d): the Ketnoi owner
# role and database. `ketnoi` may CREATE ROLE (migration 0008 creates ketnoi_console and
# ketnoi_service and grants them to itself) but is neither superuser nor BYPASSRLS.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v pw="$(cat /run/secrets/ketnoi_db_password)" <<'SQL'
CREATE ROLE ketnoi LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS NOREPLICATION PASSWORD :'pw';
CREATE DATABASE ketnoi OWNER ketnoi;
REVOKE ALL ON DATABASE ketnoi FROM PUBLIC;
SQL
