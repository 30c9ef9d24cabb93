package main

// The way Argo CD v3 runs a resource health script: gitops-engine's GetResourceHealth
// (pkg/health/health.go) and Argo CD's util/lua/lua.go (runLuaWithResourceActionParameters,
// ExecuteHealthLua, decodeValue, oslib_safe.go), reproduced on the same gopher-lua and
// gopher-json versions. Argo CD itself cannot be imported as a module (see
// /work/shared/reference/packaging.md §4), so keep this in step with those files.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

var argoHealthStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// argoCDHealth returns what Argo CD shows and what the script returned.
func argoCDHealth(obj *unstructured.Unstructured, script string, openLibs bool) (shown, fromScript verdict) {
	fromScript, err := runHealthScript(obj, script, openLibs)
	if err != nil {
		// GetResourceHealth: a failing script makes the resource Unknown with the error.
		fromScript = verdict{Status: "Unknown", Message: err.Error()}
	}
	if obj.GetDeletionTimestamp() != nil {
		// GetResourceHealth answers this before it looks for a script.
		return verdict{Status: "Progressing", Message: "Pending deletion"}, fromScript
	}
	return fromScript, fromScript
}

func runHealthScript(obj *unstructured.Unstructured, script string, openLibs bool) (verdict, error) {
	// Custom scripts from argocd-cm run without the standard libraries unless
	// useOpenLibs is set; package, base, table and a reduced os are always opened.
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return verdict{}, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.NewTable())
	l.SetGlobal("obj", toLua(l, obj.Object))

	if err := l.DoString(script); err != nil {
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = "" // Argo CD drops it before showing the error
		}
		return verdict{}, err
	}
	returned := l.Get(-1)
	switch returned.Type() {
	case lua.LTNil:
		return verdict{}, nil
	case lua.LTTable:
	default:
		return verdict{}, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return verdict{}, err
	}
	var health verdict
	if err := json.Unmarshal(encoded, &health); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Value == "array" {
			return verdict{}, nil // an empty table encodes as []
		}
		return verdict{}, err
	}
	if !argoHealthStatuses[health.Status] {
		return verdict{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return health, nil
}

// Argo CD's "safe" os library: gopher-lua's os.time and os.date only (Argo CD carries
// copies of both). Argo CD's OpenSafeOs registers them under the *table* module name,
// which is already loaded, so it adds nothing: a custom script has no global `os` and
// reaches the two only through `require("os")`. Reproduced as is.
var safeOsFuncs = func() map[string]lua.LGFunction {
	l := lua.NewState()
	defer l.Close()
	full := l.GetGlobal(lua.OsLibName).(*lua.LTable)
	funcs := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		funcs[name] = full.RawGetString(name).(*lua.LFunction).GFunction
	}
	return funcs
}()

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, safeOsFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), safeOsFuncs))
	return 1
}

// toLua is Argo CD's decodeValue: JSON values as Lua values, every number an LNumber.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}
