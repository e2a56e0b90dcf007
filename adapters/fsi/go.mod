module github.com/medsettle/medsettle/adapters/fsi

go 1.21

require github.com/shopspring/decimal v1.6.0
