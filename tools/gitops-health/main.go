// Command gitops-health prints how GitOps tools judge Kubernetes objects: the status that
// kstatus computes (what Flux and `helm --wait` use) and the health Argo CD shows with a
// custom health script, run the way Argo CD runs it.
//
//	gitops-health --argocd-script docs/argocd-health.lua [--open-libs] [FILE]
//
// It reads JSON from FILE or stdin: one object, an array of objects, or a List as
// `kubectl get -o json` prints it. It writes a JSON array with one report per object.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type report struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Generation int64  `json:"generation"`
	// Kstatus is status.Compute's verdict, exactly as Flux and helm --wait get it.
	Kstatus verdict `json:"kstatus"`
	// ArgoCD is what Argo CD shows, and ArgoCDScript what the script alone returned
	// (they differ for an object being deleted, which Argo CD judges without the script).
	ArgoCD       verdict `json:"argocd"`
	ArgoCDScript verdict `json:"argocdScript"`
}

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	script := flag.String("argocd-script", "", "Argo CD health script (Lua) to run on each object")
	openLibs := flag.Bool("open-libs", false,
		"open all Lua libraries, as Argo CD does for built-in scripts or with resource.customizations.useOpenLibs")
	flag.Parse()
	if err := run(*script, *openLibs, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "gitops-health:", err)
		os.Exit(1)
	}
}

func run(scriptPath string, openLibs bool, args []string) error {
	if scriptPath == "" {
		return errors.New("--argocd-script is required")
	}
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	var input []byte
	switch len(args) {
	case 0:
		input, err = io.ReadAll(os.Stdin)
	case 1:
		input, err = os.ReadFile(args[0])
	default:
		return errors.New("at most one input file")
	}
	if err != nil {
		return err
	}
	objects, err := decodeObjects(input)
	if err != nil {
		return err
	}
	reports := make([]report, 0, len(objects))
	for _, obj := range objects {
		reports = append(reports, judge(obj, string(script), openLibs))
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	return out.Encode(reports)
}

func judge(obj *unstructured.Unstructured, script string, openLibs bool) report {
	r := report{
		Kind:       obj.GetKind(),
		Namespace:  obj.GetNamespace(),
		Name:       obj.GetName(),
		Generation: obj.GetGeneration(),
	}
	if res, err := status.Compute(obj); err != nil {
		r.Kstatus = verdict{Status: "Error", Message: err.Error()}
	} else {
		r.Kstatus = verdict{Status: res.Status.String(), Message: res.Message}
	}
	r.ArgoCD, r.ArgoCDScript = argoCDHealth(obj, script, openLibs)
	return r
}

// decodeObjects accepts one object, an array of objects, or a List. Objects go through
// Unstructured.UnmarshalJSON so that integers are int64, as kstatus expects (and as
// Argo CD's informers hand them to Lua).
func decodeObjects(input []byte) ([]*unstructured.Unstructured, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(input, &raws); err != nil {
		var list struct {
			Items *[]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(input, &list); err != nil {
			return nil, fmt.Errorf("input is not a JSON object or array: %w", err)
		}
		if list.Items != nil {
			raws = *list.Items
		} else {
			raws = []json.RawMessage{input}
		}
	}
	objects := make([]*unstructured.Unstructured, 0, len(raws))
	for i, raw := range raws {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		objects = append(objects, obj)
	}
	return objects, nil
}
