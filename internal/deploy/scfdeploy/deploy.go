// Package scfdeploy deploys the broker to Tencent SCF straight through the SCF
// API (version 2018-04-16), from the same serverless.yml the scf CLI reads:
// it creates or updates the function and its Function URL, and writes nothing
// when nothing changed.
//
// Load resolves the file (${env:NAME}, ${name}, ${stage}, ${app}, ${org},
// .env.<stage> and .env) and refuses what it cannot honour, naming the line;
// Deploy checks what it is about to deploy (the function's own
// configuration check, internal/config, on the variables; the execution
// role), prints a plan naming every setting and variable that changes
// (secrets masked, on every line it prints), then calls only what the plan
// needs, waiting for the function to be Active before and after every write
// and retrying once a write refused because the function was busy; Remove
// deletes the Function URL and the function and waits until it is gone.
// Only these actions are used:
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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"carbroker/internal/config"
)

// MaxInlineZip is the largest zip sent inline: a TC3 request body is capped at
// 10 MB and base64 makes the zip a third larger.
const MaxInlineZip = 7 << 20

// Options configure Deploy and Remove.
type Options struct {
	Client *Client
	Out    io.Writer // the plan and the progress
	DryRun bool      // print the plan, change nothing
	// Poll is the longest pause between two GetFunction calls while a
	// change runs (default 2s; the first comes after 200ms and the pauses
	// double); Wait bounds each wait (default 5m).
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

// run is one Deploy or Remove: its options, its file and what it wrote.
type run struct {
	o   Options
	s   *Spec
	c   *Client
	out io.Writer
	res Result
}

func newRun(s *Spec, o Options) (*run, *redactingWriter) {
	o.defaults()
	w := &redactingWriter{w: o.Out, r: newRedactor(s)}
	return &run{o: o, s: s, c: o.Client, out: w}, w
}

// Deploy creates or updates the function s describes, with the code in zipPath.
func Deploy(ctx context.Context, s *Spec, zipPath string, o Options) (Result, error) {
	r, w := newRun(s, o)
	err := r.deploy(ctx, zipPath)
	w.Flush()
	return r.res, redact(err, s)
}

// Check runs, on what s would deploy, the checks that need no API call:
// the execution role is set, and the function's own configuration check
// (internal/config, as the binary runs it at start) passes on the
// variables. Credentials are not among the variables: the function gets
// them from its execution role at run time.
func Check(s *Spec) error {
	var problems []string
	if s.Role == "" {
		problems = append(problems, "SCF_ROLE (the file's role) is not set: the function signs its CAR calls with its execution role's credentials, "+
			"so without a role every call fails; create the role (docs/deploy.md, section 1) and set SCF_ROLE")
	}
	problems = append(problems, platformProblems(s)...)
	vars := map[string]string{}
	for _, v := range s.Variables {
		vars[v.Key] = v.Value
	}
	if _, err := config.Load(func(k string) string { return vars[k] }, config.Options{}); err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			return err
		}
		for _, p := range ce.Problems {
			msg := p.Message
			if p.Value != "" && !Secret(p.Var) {
				msg += fmt.Sprintf(" (got %q)", Masked(p.Var, p.Value))
			}
			problems = append(problems, msg)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s: the function would not work with this configuration (nothing was written):\n  - %s",
		s.File, strings.Join(problems, "\n  - "))
}

// variableKey is SCF's rule for a variable's name.
var variableKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// maxVariables is SCF's limit for all variables together (4 KB).
const maxVariables = 4 << 10

// platformProblems lists what SCF itself would refuse in the configuration
// (CreateFunction's rules in the API reference; the 4 KB of variables from
// SCF's quotas): found before any write, so that a refused configuration
// never follows a code update that went through.
func platformProblems(s *Spec) []string {
	var out []string
	if m := s.MemorySize; m != 64 && (m < 128 || m > 3072 || m%128 != 0) {
		out = append(out, fmt.Sprintf("memorySize %d: SCF allows 64, or 128-3072 in steps of 128", m))
	}
	if s.Timeout < 1 || s.Timeout > 900 {
		out = append(out, fmt.Sprintf("timeout %d: SCF allows 1-900 seconds", s.Timeout))
	}
	if s.InitTimeout < 3 || s.InitTimeout > 300 {
		out = append(out, fmt.Sprintf("initTimeout %d: SCF allows 3-300 seconds", s.InitTimeout))
	}
	size := 0
	for _, v := range s.Variables {
		size += len(v.Key) + len(v.Value)
		switch {
		case !variableKey.MatchString(v.Key):
			out = append(out, fmt.Sprintf("variable %s: SCF wants a name of letters, digits and _, starting with a letter", v.Key))
		case strings.HasPrefix(v.Key, "SCF_") || strings.HasPrefix(v.Key, "QCLOUD_") || strings.HasPrefix(v.Key, "TENCENTCLOUD_"):
			out = append(out, fmt.Sprintf("variable %s: SCF reserves the prefixes SCF_, QCLOUD_ and TENCENTCLOUD_ (SCF_ROLE, SCF_NAMESPACE and the like are settings of make deploy, not variables of the function)", v.Key))
		}
	}
	if size > maxVariables {
		out = append(out, fmt.Sprintf("the variables take %d bytes together: SCF allows 4 KB (4096); prefer JWT_JWKS_URL to a PEM key", size))
	}
	return out
}

func (r *run) deploy(ctx context.Context, zipPath string) error {
	s, c := r.s, r.c
	zipData, err := os.ReadFile(zipPath)
	if err != nil {
		return fmt.Errorf("%w (run make package first)", err)
	}
	if len(zipData) > MaxInlineZip {
		return fmt.Errorf("%s is %.1f MB: an inline upload must stay under %d MB (the API caps a request at 10 MB, and base64 adds a third); "+
			"upload larger packages through COS, which make deploy does not do", zipPath, float64(len(zipData))/(1<<20), MaxInlineZip>>20)
	}
	if err := Check(s); err != nil {
		return err
	}
	sum := sha256.Sum256(zipData)
	ns := s.Namespace
	fmt.Fprintf(r.out, "function %s (namespace %s, region %s), from %s, stage %s\n", s.Function, nsName(ns), s.Region, s.File, s.Stage)

	cur, err := c.GetFunction(ctx, ns, s.Function)
	if err != nil {
		return err
	}
	if cur != nil && cur.Status == "Deleting" {
		fmt.Fprintf(r.out, "the function %s is being deleted: waiting until it is gone, then creating it afresh\n", s.Function)
		if r.o.DryRun {
			cur = nil
		} else if err := r.waitGone(ctx, "deletion"); err != nil {
			return err
		} else {
			cur = nil
		}
	}
	if cur == nil {
		return r.create(ctx, zipData, sum)
	}

	switch cur.Status {
	case "Active":
	case "UpdateFailed": // the platform accepts a new update: this deploy is the retry
		fmt.Fprintf(r.out, "note: the last update of %s failed (%s); deploying again\n", s.Function, reasons(cur))
	case "CreateFailed", "PublishFailed", "DeleteFailed":
		return failed(s, cur, "last change")
	default: // Creating, Updating, Publishing: waited out, by a dry run too (it only reads)
		if cur, err = r.waitActive(ctx, "change in progress"); err != nil {
			return err
		}
	}
	if cur.Runtime != s.Runtime || cur.Type != s.Type {
		return fmt.Errorf("the function %s has runtime %s and type %s, the file says %s and %s: SCF cannot change them; "+
			"remove the function (make remove CONFIRM=1) and deploy again", s.Function, cur.Runtime, cur.Type, s.Runtime, s.Type)
	}
	deployed, err := c.CodeSha256(ctx, ns, s.Function)
	if apiCode(err) == "FailedOperation.FunctionStatusError" {
		// GetFunctionAddress refuses a function being deployed (a change
		// made elsewhere began since the look above): wait, ask again.
		if cur, err = r.waitActive(ctx, "change in progress"); err != nil {
			return err
		}
		deployed, err = c.CodeSha256(ctx, ns, s.Function)
	}
	if err != nil {
		return err
	}
	codeChanged := !sameHash(deployed, sum[:]) || (s.Handler != "" && cur.Handler != s.Handler)
	config := configPlan(s, cur)
	trs, err := c.ListTriggers(ctx, ns, s.Function)
	if err != nil {
		return err
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
		return fmt.Errorf("the last update of %s failed (%s) and the file changes neither its code nor its configuration, "+
			"so deploying again would not retry it: fix the cause and change the file, or remove the function (make remove CONFIRM=1) and deploy again",
			s.Function, reasons(cur))
	}
	if len(code)+len(config)+len(tplan) == 0 {
		fmt.Fprintln(r.out, "plan: no change")
	} else {
		fmt.Fprintln(r.out, "plan: update")
		printChanges(r.out, code)
		printChanges(r.out, config)
		for _, l := range tplan {
			fmt.Fprintln(r.out, "  "+l)
		}
	}
	if r.o.DryRun {
		r.res.URLs = urls(trs, s)
		for _, u := range r.res.URLs {
			fmt.Fprintln(r.out, "url (now): "+u)
		}
		fmt.Fprintln(r.out, "dry run: nothing changed")
		return nil
	}
	if codeChanged {
		if err := r.write(ctx, "code update", true, func() error {
			return c.UpdateFunctionCode(ctx, s, base64.StdEncoding.EncodeToString(zipData))
		}); err != nil {
			return err
		}
		if _, err := r.waitActive(ctx, "code update"); err != nil {
			return err
		}
	}
	if len(config) > 0 {
		if err := r.write(ctx, "configuration update", true, func() error {
			return c.UpdateFunctionConfiguration(ctx, s, s.Role == "" && cur.Role != "", s.VpcID == "" && cur.VpcID != "")
		}); err != nil {
			return err
		}
		if _, err := r.waitActive(ctx, "configuration update"); err != nil {
			return err
		}
	}
	return r.triggers(ctx, trs)
}

// create creates the function and its triggers.
func (r *run) create(ctx context.Context, zipData []byte, sum [32]byte) error {
	s := r.s
	fmt.Fprintln(r.out, "plan: create the function")
	printChanges(r.out, createPlan(s, sum))
	for _, l := range triggerPlan(s, nil) {
		fmt.Fprintln(r.out, "  "+l)
	}
	if r.o.DryRun {
		fmt.Fprintln(r.out, "dry run: nothing changed")
		return nil
	}
	if err := r.createFunction(ctx, base64.StdEncoding.EncodeToString(zipData)); err != nil {
		return err
	}
	r.res.Writes++
	if _, err := r.waitActive(ctx, "create"); err != nil {
		return err
	}
	return r.triggers(ctx, nil)
}

// createFunction calls CreateFunction. SCF may still hold the name of a
// function whose deletion is ending (ResourceInUse.Function, or
// ResourceInUse.FunctionName, which the SDK also lists for CreateFunction,
// while GetFunction already says absent, or Deleting): that is waited out,
// for at most o.Wait, and the create tried again.
func (r *run) createFunction(ctx context.Context, zipBase64 string) error {
	deadline := time.Now().Add(r.o.Wait)
	told := false
	for {
		err := r.c.CreateFunction(ctx, r.s, zipBase64)
		if code := apiCode(err); (code != "ResourceInUse.Function" && code != "ResourceInUse.FunctionName") || time.Now().After(deadline) {
			return err
		}
		f, gerr := r.c.GetFunction(ctx, r.s.Namespace, r.s.Function)
		if gerr != nil {
			return gerr
		}
		if f != nil && f.Status != "Deleting" {
			return err // created elsewhere in between: say so
		}
		if !told {
			fmt.Fprintf(r.out, "  create: SCF still holds the name %s (a deletion is ending): waiting\n", r.s.Function)
			told = true
		}
		select {
		case <-time.After(r.o.Poll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// write makes one write call once the function is Active (or, with
// failedOK, UpdateFailed or PublishFailed: a function update retries them).
// A write SCF refuses because the function is busy all the same (a change
// made elsewhere began in between) is waited out and retried once.
func (r *run) write(ctx context.Context, what string, failedOK bool, call func() error) error {
	f, err := r.c.GetFunction(ctx, r.s.Namespace, r.s.Function)
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("the function %s disappeared before the %s (%w)", r.s.Function, what, errVanished)
	}
	if f.Status != "Active" && !(failedOK && (f.Status == "UpdateFailed" || f.Status == "PublishFailed")) {
		if _, err := r.waitActive(ctx, what); err != nil {
			return err
		}
	}
	err = call()
	if err != nil && r.busy(ctx, err) {
		fmt.Fprintf(r.out, "  %s: SCF refused it while the function was busy (%s): waiting, then trying once more\n", what, apiCode(err))
		if _, werr := r.waitActive(ctx, what); werr != nil {
			return werr
		}
		err = call()
	}
	if err == nil {
		r.res.Writes++
	}
	return err
}

var errVanished = errors.New("deleted elsewhere?")

// busy reports whether err is SCF refusing a write because the function is
// not Active.
func (r *run) busy(ctx context.Context, err error) bool {
	code := apiCode(err)
	if busyCodes[code] {
		return true
	}
	if !maybeBusyCodes[code] {
		return false
	}
	f, gerr := r.c.GetFunction(ctx, r.s.Namespace, r.s.Function)
	return gerr == nil && f != nil && f.Status != "Active"
}

func nsName(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func reasons(f *Function) string {
	if len(f.Reasons) == 0 {
		return "no reason given"
	}
	return strings.Join(f.Reasons, "; ")
}

// failedHints say what to do about each failed status.
var failedHints = map[string]string{
	"CreateFailed":  "fix the cause, then make remove CONFIRM=1 and make deploy again (SCF accepts only a deletion now)",
	"UpdateFailed":  "fix the cause and deploy again: a deploy that changes the code or the configuration retries the update",
	"PublishFailed": "publishing a version failed, and make deploy does not publish versions: publish again in the SCF console, or make remove CONFIRM=1 and deploy again",
	"DeleteFailed":  "run make remove CONFIRM=1 again, or delete the function in the SCF console",
}

// failed is the error for a function that ended a change in a failed status.
func failed(s *Spec, f *Function, what string) error {
	return fmt.Errorf("the %s failed: the function %s is %s: %s\n  %s", what, s.Function, f.Status, reasons(f), failedHints[f.Status])
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
	CorsConfig *struct{ Enable bool }
}

func parseURLDesc(desc string) (urlDesc, bool) {
	var d urlDesc
	return d, json.Unmarshal([]byte(desc), &d) == nil
}

// wantDesc is the TriggerDesc to send; corsOff adds CorsConfig
// {"Enable":false}, to switch off a platform CORS found on: the broker
// answers CORS itself, and two Access-Control-Allow-Origin headers break
// browsers.
func wantDesc(u *URLTrigger, corsOff bool) string {
	d := map[string]any{"AuthType": u.AuthType,
		"NetConfig": map[string]bool{"EnableIntranet": u.EnableIntranet, "EnableExtranet": u.EnableExtranet}}
	if corsOff {
		d["CorsConfig"] = map[string]bool{"Enable": false}
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// corsOn reports whether the trigger has platform CORS switched on.
func corsOn(t Trigger) bool {
	d, ok := parseURLDesc(t.Desc)
	return ok && d.CorsConfig != nil && d.CorsConfig.Enable
}

// urlTriggers returns the http triggers on the file's qualifier, the one
// named as in the file first.
func urlTriggers(s *Spec, trs []Trigger) []Trigger {
	var out []Trigger
	for _, t := range trs {
		if s.URL != nil && t.Type == "http" && t.Qualifier == s.URL.Qualifier {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b Trigger) int {
		switch {
		case a.Name == s.URL.Name && b.Name != s.URL.Name:
			return -1
		case b.Name == s.URL.Name && a.Name != s.URL.Name:
			return 1
		}
		return 0
	})
	return out
}

// sameURL compares the trigger's settings and that it is on: a URL switched
// off (Enable 0) serves nothing, and the toolkit opens it on every update.
func sameURL(t Trigger, u *URLTrigger) bool {
	d, ok := parseURLDesc(t.Desc)
	return ok && d.AuthType == u.AuthType && d.NetConfig.EnableIntranet == u.EnableIntranet && d.NetConfig.EnableExtranet == u.EnableExtranet &&
		t.Enable != "CLOSE" && !corsOn(t)
}

// timerCron reads a timer's TriggerDesc: the live API answers the cron it
// was sent ("0 */6 * * * * *") as {"cron":"0 */6 * * * * *"} (the component
// toolkit records it, src/modules/triggers/timer.ts); either form is read.
func timerCron(desc string) string {
	var d struct{ Cron string }
	if json.Unmarshal([]byte(desc), &d) == nil && d.Cron != "" {
		desc = d.Cron
	}
	return strings.Join(strings.Fields(desc), " ")
}

func openClose(on bool) string {
	if on {
		return "OPEN"
	}
	return "CLOSE"
}

func (t TimerTrigger) trigger() Trigger {
	return Trigger{Name: t.Name, Type: "timer", Qualifier: t.Qualifier, Desc: t.Cron, Enable: openClose(t.Enable), Argument: t.Argument}
}

// findTimer returns the deployed timer trigger of that name and qualifier.
func findTimer(trs []Trigger, t TimerTrigger) (Trigger, bool) {
	for _, x := range trs {
		if x.Type == "timer" && x.Name == t.Name && x.Qualifier == t.Qualifier {
			return x, true
		}
	}
	return Trigger{}, false
}

// sameTimer compares as the API reads back: the cron inside {"cron":…},
// Enable 1/0 as OPEN/CLOSE.
func sameTimer(have Trigger, t TimerTrigger) bool {
	return timerCron(have.Desc) == t.Cron && have.Enable == openClose(t.Enable) && have.Argument == t.Argument
}

func describeTimer(t TimerTrigger) string {
	s := fmt.Sprintf("cron '%s', enable %t", t.Cron, t.Enable)
	if t.Argument != "" {
		s += fmt.Sprintf(", argument %q", t.Argument)
	}
	return s
}

// triggerPlan lists the trigger changes.
func triggerPlan(s *Spec, trs []Trigger) []string {
	var out []string
	if s.URL != nil {
		mine := urlTriggers(s, trs)
		switch {
		case len(mine) == 0:
			out = append(out, fmt.Sprintf("+ Function URL %s on %s: AuthType %s, extranet %t, intranet %t", s.URL.Name, s.URL.Qualifier, s.URL.AuthType, s.URL.EnableExtranet, s.URL.EnableIntranet))
		case !sameURL(mine[0], s.URL):
			on := ""
			if mine[0].Enable == "CLOSE" {
				on = " (it is switched off: switching it on)"
			}
			if corsOn(mine[0]) {
				on += " (platform CORS is on: switching it off, the broker answers CORS)"
			}
			out = append(out, fmt.Sprintf("~ Function URL %s: AuthType %s, extranet %t, intranet %t%s", mine[0].Name, s.URL.AuthType, s.URL.EnableExtranet, s.URL.EnableIntranet, on))
		}
		for _, t := range mine[min(1, len(mine)):] {
			out = append(out, "- extra Function URL "+t.Name+" on "+t.Qualifier)
		}
	}
	for _, t := range s.Timers {
		have, ok := findTimer(trs, t)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("+ timer %s on %s: %s", t.Name, t.Qualifier, describeTimer(t)))
		case !sameTimer(have, t):
			out = append(out, fmt.Sprintf("~ timer %s: %s", t.Name, describeTimer(t)))
		}
	}
	return out
}

// triggers makes the Function URL and the timers what the file says; other
// triggers (API Gateway, timers the file does not name) are left alone.
func (r *run) triggers(ctx context.Context, trs []Trigger) error {
	c, s, ns := r.c, r.s, r.s.Namespace
	if s.URL != nil {
		mine := urlTriggers(s, trs)
		want := Trigger{Name: s.URL.Name, Type: "http", Qualifier: s.URL.Qualifier, Desc: wantDesc(s.URL, false)}
		switch {
		case len(mine) == 0:
			var desc string
			if err := r.write(ctx, "Function URL", false, func() (err error) {
				desc, err = c.CreateTrigger(ctx, ns, s.Function, want)
				return err
			}); err != nil {
				return err
			}
			want.Desc = desc
			trs = append(trs, want)
		case mine[0].Name != want.Name:
			// Adopted in place: renaming means recreating, and a new
			// trigger gets a new URL.
			fmt.Fprintf(r.out, "note: the Function URL trigger is named %s, the file says %s: it keeps its name, since recreating it would change the URL\n", mine[0].Name, want.Name)
		}
		if len(mine) > 0 && !sameURL(mine[0], s.URL) {
			want.Name, want.Desc = mine[0].Name, wantDesc(s.URL, corsOn(mine[0]))
			if err := r.write(ctx, "Function URL update", false, func() error { return c.UpdateTrigger(ctx, ns, s.Function, want) }); err != nil {
				return err
			}
			updated, err := c.ListTriggers(ctx, ns, s.Function)
			if err != nil {
				return err
			}
			trs = updated
		}
		for _, t := range mine[min(1, len(mine)):] {
			if err := r.write(ctx, "extra Function URL deletion", false, func() error { return c.DeleteTrigger(ctx, ns, s.Function, t) }); err != nil {
				return err
			}
			trs = slices.DeleteFunc(trs, func(x Trigger) bool { return x.Name == t.Name && x.Type == t.Type && x.Qualifier == t.Qualifier })
		}
	}
	for _, t := range s.Timers {
		have, ok := findTimer(trs, t)
		switch {
		case !ok:
			if err := r.write(ctx, "timer "+t.Name, false, func() error {
				_, err := c.CreateTrigger(ctx, ns, s.Function, t.trigger())
				return err
			}); err != nil {
				return err
			}
		case !sameTimer(have, t):
			if err := r.write(ctx, "timer "+t.Name+" update", false, func() error { return c.UpdateTrigger(ctx, ns, s.Function, t.trigger()) }); err != nil {
				return err
			}
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
			fmt.Fprintln(r.out, "note: the function has no API Gateway trigger, and new ones can no longer be created; "+
				"bind an existing API Gateway service in its console, or use the Function URL (serverless.yml)")
		} else {
			fmt.Fprintf(r.out, "API Gateway trigger(s) left as they are: %s (see the API Gateway console for their addresses)\n", strings.Join(names, ", "))
		}
	}
	r.res.URLs = urls(trs, s)
	if s.URL != nil && len(r.res.URLs) == 0 {
		// CreateTrigger's TriggerInfo may come without the addresses: ask again.
		listed, err := c.ListTriggers(ctx, ns, s.Function)
		if err != nil {
			return err
		}
		r.res.URLs = urls(listed, s)
	}
	for _, u := range r.res.URLs {
		fmt.Fprintln(r.out, "url: "+u)
	}
	fmt.Fprintf(r.out, "done: %d write call(s)\n", r.res.Writes)
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

// poll asks GetFunction, first after 200ms, then at growing intervals up to
// o.Poll, until done says so, for at most o.Wait; it reports the status as it changes. done gets nil when the
// function is absent. On timeout it returns the last function and
// errTimeout.
func (r *run) poll(ctx context.Context, what, waitingFor string, done func(*Function) (bool, error)) (*Function, error) {
	start := time.Now()
	deadline := start.Add(r.o.Wait)
	last, told := "", start
	wait := min(200*time.Millisecond, r.o.Poll) // then doubled up to o.Poll: most changes end in seconds
	for {
		f, err := r.c.GetFunction(ctx, r.s.Namespace, r.s.Function)
		if err != nil {
			return nil, err
		}
		ok, err := done(f)
		if f == nil && !ok && err == nil {
			f = &Function{Status: "absent"}
		}
		if ok || err != nil {
			if err == nil && last != "" {
				fmt.Fprintf(r.out, "  %s: %s after %s\n", what, waitingFor, time.Since(start).Round(100*time.Millisecond))
			}
			return f, err
		}
		if f.Status != last {
			fmt.Fprintf(r.out, "  %s: %s, waiting for %s (at most %s)\n", what, f.Status, waitingFor, r.o.Wait)
			last, told = f.Status, time.Now()
		} else if time.Since(told) >= 15*time.Second {
			fmt.Fprintf(r.out, "  %s: still %s after %s\n", what, f.Status, time.Since(start).Round(time.Second))
			told = time.Now()
		}
		if time.Now().After(deadline) {
			return f, errTimeout
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wait = min(2*wait, r.o.Poll)
	}
}

var errTimeout = errors.New("timed out")

// waitActive waits until the function is Active. A failed status ends the
// wait at once with SCF's StatusReasons.
func (r *run) waitActive(ctx context.Context, what string) (*Function, error) {
	f, err := r.poll(ctx, what, "Active", func(f *Function) (bool, error) {
		switch {
		case f == nil:
			return false, fmt.Errorf("the function %s disappeared while waiting for the %s (deleted elsewhere?)", r.s.Function, what)
		case f.Status == "Active":
			return true, nil
		case strings.HasSuffix(f.Status, "Failed"):
			return false, failed(r.s, f, what)
		}
		return false, nil
	})
	if errors.Is(err, errTimeout) {
		return nil, fmt.Errorf("the function %s is still %s after %s: see the SCF console", r.s.Function, f.Status, r.o.Wait)
	}
	return f, err
}

// waitGone waits until the function no longer exists. DeleteFailed ends
// the wait at once with SCF's StatusReasons.
func (r *run) waitGone(ctx context.Context, what string) error {
	f, err := r.poll(ctx, what, "the function to be gone", func(f *Function) (bool, error) {
		switch {
		case f == nil:
			return true, nil
		case f.Status == "DeleteFailed":
			return false, failed(r.s, f, what)
		case f.Status != "Deleting":
			return false, fmt.Errorf("the function %s is %s again while waiting for its %s: someone changed it; see the SCF console", r.s.Function, f.Status, what)
		}
		return false, nil
	})
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("the function %s is still %s after %s: %w", r.s.Function, f.Status, r.o.Wait, errDeleting)
	}
	return err
}

var errDeleting = errors.New("the deletion is under way, and SCF finishes it on its own; make remove CONFIRM=1 again shows when it is gone")

// Remove deletes the Function URL trigger(s) and the function, and waits
// until it is gone; without confirm it only prints what it would delete.
func Remove(ctx context.Context, s *Spec, confirm bool, o Options) error {
	r, w := newRun(s, o)
	err := r.remove(ctx, confirm)
	w.Flush()
	return redact(err, s)
}

func (r *run) remove(ctx context.Context, confirm bool) error {
	c, s := r.c, r.s
	cur, err := c.GetFunction(ctx, s.Namespace, s.Function)
	if err != nil {
		return err
	}
	if cur == nil {
		fmt.Fprintf(r.out, "the function %s does not exist in %s: nothing to remove\n", s.Function, s.Region)
		return nil
	}
	if cur.Status == "Deleting" {
		fmt.Fprintf(r.out, "the function %s is already being deleted\n", s.Function)
		if !confirm {
			return nil
		}
		return r.gone(ctx)
	}
	trs, err := c.ListTriggers(ctx, s.Namespace, s.Function)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "remove: the function %s (namespace %s, region %s, status %s)\n", s.Function, nsName(s.Namespace), s.Region, cur.Status)
	var http []Trigger
	for _, t := range trs {
		if t.Type == "http" {
			http = append(http, t)
			fmt.Fprintf(r.out, "  - Function URL %s on %s\n", t.Name, t.Qualifier)
		} else {
			fmt.Fprintf(r.out, "  - %s trigger %s (deleted with the function)\n", t.Type, t.Name)
		}
	}
	if !confirm {
		return errors.New("nothing removed: run again with CONFIRM=1 to delete these")
	}
	if cur.Status == "Creating" || cur.Status == "Updating" || cur.Status == "Publishing" {
		if cur, err = r.poll(ctx, "change in progress", "its end", func(f *Function) (bool, error) {
			return f == nil || (f.Status != "Creating" && f.Status != "Updating" && f.Status != "Publishing"), nil
		}); err != nil {
			if errors.Is(err, errTimeout) {
				return fmt.Errorf("the function %s is still %s after %s: see the SCF console", s.Function, cur.Status, r.o.Wait)
			}
			return err
		}
		if cur == nil {
			fmt.Fprintf(r.out, "the function %s is gone\n", s.Function)
			return nil
		}
	}
	// A not-found answer means a deletion made elsewhere got there first:
	// what make remove wanted (Terraform's provider takes it so too).
	goneElsewhere := func() error {
		fmt.Fprintf(r.out, "the function %s is gone (deleted elsewhere meanwhile)\n", s.Function)
		return nil
	}
	if cur.Status == "Active" { // SCF refuses trigger changes otherwise; the function's deletion takes them along
		for _, t := range http {
			err := r.write(ctx, "Function URL deletion", false, func() error { return c.DeleteTrigger(ctx, s.Namespace, s.Function, t) })
			switch code := apiCode(err); {
			case absentCodes[code] || errors.Is(err, errVanished):
				return goneElsewhere()
			case code == "ResourceNotFound.Trigger": // deleted elsewhere: fine
			case err != nil:
				return err
			}
		}
	}
	if err := c.DeleteFunction(ctx, s.Namespace, s.Function); err != nil {
		if absentCodes[apiCode(err)] {
			return goneElsewhere()
		}
		if !r.busy(ctx, err) {
			return err
		}
		fmt.Fprintf(r.out, "  deletion: SCF refused it while the function was busy (%s): waiting, then trying once more\n", apiCode(err))
		if _, err := r.poll(ctx, "deletion", "its status to settle", func(f *Function) (bool, error) {
			return f == nil || (f.Status != "Creating" && f.Status != "Updating" && f.Status != "Publishing"), nil
		}); err != nil {
			return err
		}
		if err := c.DeleteFunction(ctx, s.Namespace, s.Function); err != nil {
			return err
		}
	}
	r.res.Writes++
	fmt.Fprintf(r.out, "deleting %s\n", s.Function)
	return r.gone(ctx)
}

// gone waits for the end of a deletion; a deletion still under way after
// o.Wait is reported, not an error: SCF finishes it.
func (r *run) gone(ctx context.Context) error {
	err := r.waitGone(ctx, "deletion")
	if errors.Is(err, errDeleting) {
		fmt.Fprintf(r.out, "note: %v\n", err)
		return nil
	}
	if err == nil {
		fmt.Fprintf(r.out, "removed %s\n", r.s.Function)
	}
	return err
}
