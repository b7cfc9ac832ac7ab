// Package api holds the protobuf definitions of the system under test and
// the Go code generated from them. The generated code is committed; run
// `make proto` (which runs go generate here) after editing a .proto file.
package api

//go:generate protoc --plugin=protoc-gen-go=../../bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../../bin/protoc-gen-go-grpc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative user/v1/user.proto payment/v1/payment.proto order/v1/order.proto consumer/v1/consumer.proto
