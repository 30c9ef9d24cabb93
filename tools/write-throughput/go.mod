module cvm-operator/tools/write-throughput

go 1.26
