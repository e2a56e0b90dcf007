package postgres

// CST is the counter's time zone, for the package's external tests.
var CST = cst
