// Package scfdeploy deploys the broker to Tencent SCF straight through the SCF
// API (version 2018-04-16), from the same serverless.yml the scf CLI reads:
// it creates or updates the function and its Function URL, and writes nothing
// when nothing changed.
//
// Load resolves the file (${env:NAME}, ${name}, ${stage}, ${app}, ${org},
// .env.<stage> and .env); Deploy prints a plan naming every setting and
// variable that changes (secrets masked), then calls only what the plan
// needs, waiting for the function to be Active around every write; Remove
// deletes the Function URL and the function. Only these actions are used:
// GetFunction, GetFunctionAddress, CreateFunction, UpdateFunctionCode,
// UpdateFunctionConfiguration, ListTriggers, CreateTrigger, UpdateTrigger,
// DeleteTrigger and DeleteFunction.
package scfdeploy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxInlineZip is the largest zip sent inline: a TC3 request body is capped at
// 10 MB and base64 makes the zip a third larger.
const MaxInlineZip = 7 << 20

// URLTriggerName is the name given to the Function URL trigger make deploy creates.
const URLTriggerName = "function-url"

// Options configure Deploy and Remove.
type Options struct {
	Client *Client
	Out    io.Writer // the plan and the progress
	DryRun bool      // print the plan, change nothing
	// Poll is how often GetFunction is asked while the function is not
	// Active (default 2s); Wait bounds each wait (default 5m).
	Poll, Wait time.Duration
}

// Result is what a deploy did.
type Result struct {
	Writes int      // write calls made
	URLs   []string // the Function URL(s); "" entries left out
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Minute
	}
}

// change is one line of the plan.
type change struct{ what, from, to string }

// Deploy creates or updates the function s describes, with the code in zipPath.
func Deploy(ctx context.Context, s *Spec, zipPath string, o Options) (Result, error) {
	res, err := deploy(ctx, s, zipPath, o)
	return res, redact(err, s)
}

func deploy(ctx context.Context, s *Spec, zipPath string, o Options) (Result, error) {
	o.defaults()
	var res Result
	zipData, err := os.ReadFile(zipPath)
	if err != nil {
		return res, fmt.Errorf("%w (run make package first)", err)
	}
	if len(zipData) > MaxInlineZip {
		return res, fmt.Errorf("%s is %.1f MB: an inline upload must stay under %d MB (the API caps a request at 10 MB, and base64 adds a third); "+
			"upload larger packages through COS, which make deploy does not do", zipPath, float64(len(zipData))/(1<<20), MaxInlineZip>>20)
	}
	sum := sha256.Sum256(zipData)
	c := o.Client
	ns := s.Namespace
	fmt.Fprintf(o.Out, "function %s (namespace %s, region %s), from %s, stage %s\n", s.Function, nsName(ns), s.Region, s.File, s.Stage)

	cur, err := c.GetFunction(ctx, ns, s.Function)
	if err != nil {
		return res, err
	}
	if cur == nil {
		fmt.Fprintln(o.Out, "plan: create the function")
		printChanges(o.Out, createPlan(s, sum))
		if s.URL != nil {
			fmt.Fprintf(o.Out, "  + Function URL on %s: AuthType %s, extranet %t, intranet %t\n", s.URL.Qualifier, s.URL.AuthType, s.URL.EnableExtranet, s.URL.EnableIntranet)
		}
		if o.DryRun {
			fmt.Fprintln(o.Out, "dry run: nothing changed")
			return res, nil
		}
		if err := c.CreateFunction(ctx, s, base64.StdEncoding.EncodeToString(zipData)); err != nil {
			return res, err
		}
		res.Writes++
		if _, err := waitActive(ctx, o, s, "create"); err != nil {
			return res, err
		}
		return res, triggers(ctx, o, s, nil, &res)
	}

	switch cur.Status {
	case "Active":
	case "UpdateFailed": // the platform accepts a new update: this deploy is the retry
		fmt.Fprintf(o.Out, "note: the last update of %s failed (%s); deploying again\n", s.Function, strings.Join(cur.Reasons, "; "))
	case "CreateFailed":
		return res, fmt.Errorf("the function %s is CreateFailed (%s): remove it (make remove CONFIRM=1) and deploy again", s.Function, strings.Join(cur.Reasons, "; "))
	default:
		if cur, err = waitActive(ctx, o, s, "change in progress"); err != nil {
			return res, err
		}
	}
	if cur.Runtime != s.Runtime || cur.Type != s.Type {
		return res, fmt.Errorf("the function %s has runtime %s and type %s, the file says %s and %s: SCF cannot change them; "+
			"remove the function (make remove CONFIRM=1) and deploy again", s.Function, cur.Runtime, cur.Type, s.Runtime, s.Type)
	}
	deployed, err := c.CodeSha256(ctx, ns, s.Function)
	if err != nil {
		return res, err
	}
	codeChanged := !sameHash(deployed, sum[:]) || (s.Handler != "" && cur.Handler != s.Handler)
	config := configPlan(s, cur)
	var trs []Trigger
	if trs, err = c.ListTriggers(ctx, ns, s.Function); err != nil {
		return res, err
	}
	var code []change
	if codeChanged {
		code = append(code, change{"code (sha256)", shortHash(deployed), hex.EncodeToString(sum[:])[:12]})
		if s.Handler != "" && cur.Handler != s.Handler {
			code = append(code, change{"handler", cur.Handler, s.Handler})
		}
	}
	tplan := triggerPlan(s, trs)
	if cur.Status == "UpdateFailed" && len(code)+len(config) == 0 {
		return res, fmt.Errorf("the last update of %s failed (%s) and the file changes neither its code nor its configuration, "+
			"so deploying again would not retry it: fix the cause and change the file, or remove the function (make remove CONFIRM=1) and deploy again",
			s.Function, strings.Join(cur.Reasons, "; "))
	}
	if len(code)+len(config)+len(tplan) == 0 {
		fmt.Fprintln(o.Out, "plan: no change")
	} else {
		fmt.Fprintln(o.Out, "plan: update")
		printChanges(o.Out, code)
		printChanges(o.Out, config)
		for _, l := range tplan {
			fmt.Fprintln(o.Out, "  "+l)
		}
	}
	if o.DryRun {
		res.URLs = urls(trs, s)
		for _, u := range res.URLs {
			fmt.Fprintln(o.Out, "url (now): "+u)
		}
		fmt.Fprintln(o.Out, "dry run: nothing changed")
		return res, nil
	}
	if codeChanged {
		if err := c.UpdateFunctionCode(ctx, s, base64.StdEncoding.EncodeToString(zipData)); err != nil {
			return res, err
		}
		res.Writes++
		if _, err := waitActive(ctx, o, s, "code update"); err != nil {
			return res, err
		}
	}
	if len(config) > 0 {
		if err := c.UpdateFunctionConfiguration(ctx, s, s.Role == "" && cur.Role != "", s.VpcID == "" && cur.VpcID != ""); err != nil {
			return res, err
		}
		res.Writes++
		if _, err := waitActive(ctx, o, s, "configuration update"); err != nil {
			return res, err
		}
	}
	return res, triggers(ctx, o, s, trs, &res)
}

func nsName(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// sameHash compares the API's CodeSha256 (hex or base64) with sum.
func sameHash(api string, sum []byte) bool {
	api = strings.TrimSpace(api)
	if b, err := hex.DecodeString(api); err == nil && len(b) == len(sum) {
		return string(b) == string(sum)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(api); err == nil && len(b) == len(sum) {
			return string(b) == string(sum)
		}
	}
	return false
}

func shortHash(h string) string {
	if h == "" {
		return "(none)"
	}
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func printChanges(w io.Writer, cs []change) {
	for _, c := range cs {
		if c.from == "" {
			fmt.Fprintf(w, "  + %s: %s\n", c.what, c.to)
		} else if c.to == "" {
			fmt.Fprintf(w, "  - %s (was %s)\n", c.what, c.from)
		} else {
			fmt.Fprintf(w, "  ~ %s: %s -> %s\n", c.what, c.from, c.to)
		}
	}
}

func createPlan(s *Spec, sum [32]byte) []change {
	cs := []change{
		{"runtime", "", s.Runtime}, {"type", "", s.Type}, {"handler", "", s.Handler},
		{"code (sha256)", "", hex.EncodeToString(sum[:])[:12]},
		{"description", "", strconv.Quote(s.Description)},
		{"memorySize", "", strconv.FormatInt(s.MemorySize, 10)}, {"timeout", "", strconv.FormatInt(s.Timeout, 10)},
		{"initTimeout", "", strconv.FormatInt(s.InitTimeout, 10)}, {"role", "", s.Role},
		{"vpc", "", vpc(s.VpcID, s.SubnetID)}, {"public network", "", s.PublicNet},
	}
	for _, v := range s.Variables {
		cs = append(cs, change{"variable " + v.Key, "", Masked(v.Key, v.Value)})
	}
	return slices.DeleteFunc(cs, func(c change) bool { return c.to == "" })
}

func vpc(id, subnet string) string {
	if id == "" {
		return ""
	}
	return id + "/" + subnet
}

// configPlan lists the configuration that differs from the deployed function.
func configPlan(s *Spec, cur *Function) []change {
	var cs []change
	diff := func(what, from, to string) {
		if from != to {
			cs = append(cs, change{what, from, to})
		}
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	if s.Description != cur.Description {
		cs = append(cs, change{"description", strconv.Quote(cur.Description), strconv.Quote(s.Description)})
	}
	diff("memorySize", num(cur.MemorySize), num(s.MemorySize))
	diff("timeout", num(cur.Timeout), num(s.Timeout))
	diff("initTimeout", num(cur.InitTimeout), num(s.InitTimeout))
	diff("role", cur.Role, s.Role)
	diff("vpc", vpc(cur.VpcID, cur.SubnetID), vpc(s.VpcID, s.SubnetID))
	if s.PublicNet != "" {
		diff("public network", cur.PublicNet, s.PublicNet)
	}
	have := map[string]string{}
	for _, v := range cur.Variables {
		have[v.Key] = v.Value
	}
	want := map[string]bool{}
	for _, v := range s.Variables {
		want[v.Key] = true
		old, ok := have[v.Key]
		switch {
		case !ok:
			cs = append(cs, change{"variable " + v.Key, "", Masked(v.Key, v.Value)})
		case old != v.Value && Secret(v.Key):
			cs = append(cs, change{"variable " + v.Key, "<secret>", "<secret, changed>"})
		case old != v.Value:
			cs = append(cs, change{"variable " + v.Key, Masked(v.Key, old), Masked(v.Key, v.Value)})
		}
	}
	for _, v := range cur.Variables {
		if !want[v.Key] {
			cs = append(cs, change{"variable " + v.Key, Masked(v.Key, v.Value), ""})
		}
	}
	return cs
}

// urlDesc is an http trigger's TriggerDesc, the parts compared and printed.
type urlDesc struct {
	AuthType  string
	NetConfig struct {
		EnableIntranet, EnableExtranet bool
		ExtranetUrl, IntranetUrl       string
	}
}

func parseURLDesc(desc string) (urlDesc, bool) {
	var d urlDesc
	return d, json.Unmarshal([]byte(desc), &d) == nil
}

func wantDesc(u *URLTrigger) string {
	b, _ := json.Marshal(map[string]any{"AuthType": u.AuthType,
		"NetConfig": map[string]bool{"EnableIntranet": u.EnableIntranet, "EnableExtranet": u.EnableExtranet}})
	return string(b)
}

// urlTriggers returns the http triggers on the file's qualifier.
func urlTriggers(s *Spec, trs []Trigger) []Trigger {
	var out []Trigger
	for _, t := range trs {
		if s.URL != nil && t.Type == "http" && t.Qualifier == s.URL.Qualifier {
			out = append(out, t)
		}
	}
	return out
}

func sameURL(t Trigger, u *URLTrigger) bool {
	d, ok := parseURLDesc(t.Desc)
	return ok && d.AuthType == u.AuthType && d.NetConfig.EnableIntranet == u.EnableIntranet && d.NetConfig.EnableExtranet == u.EnableExtranet
}

// triggerPlan lists the trigger changes.
func triggerPlan(s *Spec, trs []Trigger) []string {
	var out []string
	if s.URL != nil {
		mine := urlTriggers(s, trs)
		switch {
		case len(mine) == 0:
			out = append(out, fmt.Sprintf("+ Function URL on %s: AuthType %s, extranet %t, intranet %t", s.URL.Qualifier, s.URL.AuthType, s.URL.EnableExtranet, s.URL.EnableIntranet))
		case !sameURL(mine[0], s.URL):
			out = append(out, fmt.Sprintf("~ Function URL %s: AuthType %s, extranet %t, intranet %t", mine[0].Name, s.URL.AuthType, s.URL.EnableExtranet, s.URL.EnableIntranet))
		}
		for _, t := range mine[min(1, len(mine)):] {
			out = append(out, "- extra Function URL "+t.Name+" on "+t.Qualifier)
		}
	}
	return out
}

// triggers makes the Function URL what the file says; apigw triggers are left alone.
func triggers(ctx context.Context, o Options, s *Spec, trs []Trigger, res *Result) error {
	c, ns := o.Client, s.Namespace
	if s.URL != nil {
		mine := urlTriggers(s, trs)
		want := Trigger{Name: URLTriggerName, Type: "http", Qualifier: s.URL.Qualifier, Desc: wantDesc(s.URL)}
		switch {
		case len(mine) == 0:
			desc, err := c.CreateTrigger(ctx, ns, s.Function, want)
			if err != nil {
				return err
			}
			res.Writes++
			want.Desc = desc
			trs = append(trs, want)
		case !sameURL(mine[0], s.URL):
			want.Name = mine[0].Name
			if err := c.UpdateTrigger(ctx, ns, s.Function, want); err != nil {
				return err
			}
			res.Writes++
			updated, err := c.ListTriggers(ctx, ns, s.Function)
			if err != nil {
				return err
			}
			trs = updated
		}
		for _, t := range mine[min(1, len(mine)):] {
			if err := c.DeleteTrigger(ctx, ns, s.Function, t); err != nil {
				return err
			}
			res.Writes++
			trs = slices.DeleteFunc(trs, func(x Trigger) bool { return x == t })
		}
	}
	if s.APIGW {
		var names []string
		for _, t := range trs {
			if t.Type == "apigw" {
				names = append(names, t.Name)
			}
		}
		if len(names) == 0 {
			fmt.Fprintln(o.Out, "note: the function has no API Gateway trigger, and new ones can no longer be created; "+
				"bind an existing API Gateway service in its console, or use the Function URL (serverless.yml)")
		} else {
			fmt.Fprintf(o.Out, "API Gateway trigger(s) left as they are: %s (see the API Gateway console for their addresses)\n", strings.Join(names, ", "))
		}
	}
	res.URLs = urls(trs, s)
	for _, u := range res.URLs {
		fmt.Fprintln(o.Out, "url: "+u)
	}
	fmt.Fprintf(o.Out, "done: %d write call(s)\n", res.Writes)
	return nil
}

// urls returns the Function URL's addresses, extranet first.
func urls(trs []Trigger, s *Spec) []string {
	var out []string
	for _, t := range urlTriggers(s, trs) {
		if d, ok := parseURLDesc(t.Desc); ok {
			for _, u := range []string{d.NetConfig.ExtranetUrl, d.NetConfig.IntranetUrl} {
				if u != "" {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

// waitActive polls GetFunction until the function is Active, for at most o.Wait.
func waitActive(ctx context.Context, o Options, s *Spec, what string) (*Function, error) {
	start := time.Now()
	deadline := start.Add(o.Wait)
	last, told := "", start
	for {
		f, err := o.Client.GetFunction(ctx, s.Namespace, s.Function)
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, fmt.Errorf("the function %s disappeared while waiting for the %s", s.Function, what)
		}
		switch f.Status {
		case "Active":
			if last != "" {
				fmt.Fprintf(o.Out, "  %s: Active after %s\n", what, time.Since(start).Round(100*time.Millisecond))
			}
			return f, nil
		case "CreateFailed", "UpdateFailed":
			reasons := "(no reason given)"
			if len(f.Reasons) > 0 {
				reasons = strings.Join(f.Reasons, "; ")
			}
			return nil, fmt.Errorf("the %s failed: the function %s is %s: %s", what, s.Function, f.Status, reasons)
		}
		if f.Status != last {
			fmt.Fprintf(o.Out, "  %s: %s, waiting for Active (at most %s)\n", what, f.Status, o.Wait)
			last, told = f.Status, time.Now()
		} else if time.Since(told) >= 15*time.Second {
			fmt.Fprintf(o.Out, "  %s: still %s after %s\n", what, f.Status, time.Since(start).Round(time.Second))
			told = time.Now()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the function %s is still %s after %s: see the SCF console", s.Function, f.Status, o.Wait)
		}
		select {
		case <-time.After(o.Poll):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Remove deletes the Function URL trigger(s) and the function; without
// confirm it only prints what it would delete.
func Remove(ctx context.Context, s *Spec, confirm bool, o Options) error {
	return redact(remove(ctx, s, confirm, o), s)
}

func remove(ctx context.Context, s *Spec, confirm bool, o Options) error {
	o.defaults()
	c := o.Client
	cur, err := c.GetFunction(ctx, s.Namespace, s.Function)
	if err != nil {
		return err
	}
	if cur == nil {
		fmt.Fprintf(o.Out, "the function %s does not exist in %s: nothing to remove\n", s.Function, s.Region)
		return nil
	}
	trs, err := c.ListTriggers(ctx, s.Namespace, s.Function)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "remove: the function %s (namespace %s, region %s)\n", s.Function, nsName(s.Namespace), s.Region)
	var http []Trigger
	for _, t := range trs {
		if t.Type == "http" {
			http = append(http, t)
			fmt.Fprintf(o.Out, "  - Function URL %s on %s\n", t.Name, t.Qualifier)
		}
	}
	if !confirm {
		return errors.New("nothing removed: run again with CONFIRM=1 to delete these")
	}
	if cur.Status != "Active" && cur.Status != "CreateFailed" && cur.Status != "UpdateFailed" {
		if _, err := waitActive(ctx, o, s, "change in progress"); err != nil {
			return err
		}
	}
	for _, t := range http {
		if err := c.DeleteTrigger(ctx, s.Namespace, s.Function, t); err != nil {
			return err
		}
	}
	if err := c.DeleteFunction(ctx, s.Namespace, s.Function); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "removed %s\n", s.Function)
	return nil
}
