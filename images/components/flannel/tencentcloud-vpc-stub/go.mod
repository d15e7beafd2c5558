// A stand-in for github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc, which the Go
// module proxy does not serve at any version. flanneld links every cloud backend; this module
// gives its Tencent Cloud VPC backend the API it compiles against, and that backend fails at
// run time with a clear error. minilab's clusters use the host-gw or vxlan backends.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.22
