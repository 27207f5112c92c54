// Package postgres holds no code: it is roles.sql, scribeq's least-privilege
// Postgres roles, and the tests that apply it to a real server and then
// run migrations, the sink's writes and the query commands each under its
// own role, proving both that each role can do its job and that it can do
// no more.
package postgres
