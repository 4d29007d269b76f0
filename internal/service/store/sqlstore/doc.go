// Package sqlstore is the SQL the store backends share: the queries
// that read and write the same on SQLite and PostgreSQL, over
// database/sql, with the few differences between the two (placeholders,
// booleans) held by a Dialect, and the compose status as a SQL
// expression generated from store's one table of rules.
package sqlstore
