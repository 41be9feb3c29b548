module github.com/saferoot/saferoot-go

go 1.19
