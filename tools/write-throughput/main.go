// write-throughput measures how many CvmInstance writes a second the API server takes: the
// cost of the CRD's validation rules on the writes a set's children make (create, status
// PATCH, DELETE, finalizer removal). Standard library only. See run.sh and
// docs/performance.md ("fourth round").
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	server := flag.String("server", "", "API server URL")
	ca := flag.String("ca", "", "CA certificate (PEM)")
	cert := flag.String("cert", "", "client certificate (PEM)")
	key := flag.String("key", "", "client key (PEM)")
	n := flag.Int("n", 2000, "objects")
	inFlight := flag.Int("c", 32, "requests in flight")
	mode := flag.String("mode", "create", "create | status | delete | finalizer")
	namespace := flag.String("ns", "default", "namespace")
	round := flag.Int("round", 0, "status round: goes into the Ready message, so each round changes the object")
	flag.Parse()

	pair, err := tls.LoadX509KeyPair(*cert, *key)
	check(err)
	caPEM, err := os.ReadFile(*ca)
	check(err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots},
		MaxIdleConnsPerHost: *inFlight,
		MaxConnsPerHost:     *inFlight,
	}}
	spec, err := os.ReadFile("child-spec.json")
	check(err)
	status, err := os.ReadFile("child-status.json")
	check(err)
	status = bytes.ReplaceAll(status, []byte("ROUND"), []byte(fmt.Sprint(*round)))
	base := fmt.Sprintf("%s/apis/cvm-operator.io/v1alpha1/namespaces/%s/cvminstances", *server, *namespace)

	request := func(name string) *http.Request {
		var req *http.Request
		switch *mode {
		case "create":
			body := fmt.Sprintf(`{"apiVersion":"cvm-operator.io/v1alpha1","kind":"CvmInstance","metadata":{"name":%q,"finalizers":["cvm-operator.io/terminate-instance"],"labels":{"cvm-operator.io/instance-set":"workers"}},"spec":%s}`, name, spec)
			req, _ = http.NewRequest("POST", base, bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/json")
		case "status":
			body := append(append([]byte(`{"status":`), status...), '}')
			req, _ = http.NewRequest("PATCH", base+"/"+name+"/status", bytes.NewBuffer(body))
			req.Header.Set("Content-Type", "application/merge-patch+json")
		case "delete":
			req, _ = http.NewRequest("DELETE", base+"/"+name, nil)
		case "finalizer":
			req, _ = http.NewRequest("PATCH", base+"/"+name, bytes.NewBufferString(`{"metadata":{"finalizers":null}}`))
			req.Header.Set("Content-Type", "application/merge-patch+json")
		default:
			check(fmt.Errorf("unknown -mode %q", *mode))
		}
		return req
	}

	var next, failed int64 = -1, 0
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *inFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(*n) {
					return
				}
				resp, err := client.Do(request(fmt.Sprintf("child-%05d", i)))
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 300 {
						err = fmt.Errorf("%d %s", resp.StatusCode, body)
					}
				}
				if err != nil && atomic.AddInt64(&failed, 1) <= 3 {
					fmt.Fprintln(os.Stderr, err)
				}
			}
		}()
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	fmt.Printf("%-9s n=%d in flight=%d %.2f s %.0f/s failed=%d\n", *mode, *n, *inFlight, seconds, float64(*n)/seconds, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
