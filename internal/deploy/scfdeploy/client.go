package scfdeploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"carbroker/internal/car"
)

const (
	service     = "scf"
	version     = "2018-04-16"
	defaultHost = "scf.tencentcloudapi.com"
)

// Credentials finds the deployer's credentials: TENCENTCLOUD_SECRETID /
// SECRETKEY (/ SESSIONTOKEN), as the function reads them, then the SDK's
// TENCENTCLOUD_SECRET_ID / SECRET_KEY, then the SDK's profile file
// (TENCENTCLOUD_CREDENTIALS_FILE or ~/.tencentcloud/credentials). Never the
// CVM role: it would dial the instance metadata service.
func Credentials(getenv func(string) string) (car.Credentials, error) {
	if t := car.EnvCredentials(getenv); t.Valid() {
		return t, nil
	}
	c, err := common.DefaultProfileProvider().GetCredential()
	if err == nil && c.GetSecretId() != "" && c.GetSecretKey() != "" {
		return car.Credentials{ID: c.GetSecretId(), Key: c.GetSecretKey(), Token: c.GetToken()}, nil
	}
	msg := "no Tencent Cloud credentials: set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY " +
		"(or TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY, or a profile in ~/.tencentcloud/credentials)"
	if getenv("TENCENT_SECRET_ID") != "" {
		msg += "; TENCENT_SECRET_ID is Tencent's CLI's name, which make deploy does not read: rename it"
	}
	return car.Credentials{}, errors.New(msg)
}

// Client calls the SCF API with typed requests built on the SDK's common package.
type Client struct {
	sdk     *common.Client
	retries int           // attempts after RequestLimitExceeded
	backoff time.Duration // first wait after RequestLimitExceeded, doubled each time
}

// NewClient returns a client for region. endpoint is "" (scf.tencentcloudapi.com
// over HTTPS) or a scheme and host, e.g. http://127.0.0.1:9100 (SCF_API_ENDPOINT).
func NewClient(t car.Credentials, region, endpoint string, transport http.RoundTripper) (*Client, error) {
	p := profile.NewClientProfile()
	p.HttpProfile.Endpoint, p.HttpProfile.Scheme = defaultHost, "HTTPS"
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("SCF_API_ENDPOINT %q: want a scheme and host, e.g. https://scf.tencentcloudapi.com", endpoint)
		}
		p.HttpProfile.Endpoint, p.HttpProfile.Scheme = u.Host, strings.ToUpper(u.Scheme)
	}
	p.HttpProfile.ReqTimeout = 120 // a zip of several MB goes up in one request
	p.Language = "en-US"
	p.DisableRegionBreaker = true
	p.RateLimitExceededMaxRetries = 0 // retried here, with a bound and a message
	p.NetworkFailureMaxRetries = 0
	sdk := common.NewCommonClient(common.NewTokenCredential(t.ID, t.Key, t.Token), region, p)
	if transport != nil {
		sdk.WithHttpTransport(transport)
	}
	return &Client{sdk: sdk, retries: 5, backoff: time.Second}, nil
}

// APIError is an error the SCF API answered.
type APIError struct {
	Action, Code, Message, RequestID string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s: %s (RequestId %s)", e.Action, e.Code, e.Message, e.RequestID)
}

// permissionRef finds "(scf:CreateFunction)" or "(cam:PassRole)" in a CAM message.
var permissionRef = regexp.MustCompile(`\(([a-z]+:[A-Za-z]+)\)`)

// permissionCodes are the UnauthorizedOperation codes that mean a missing
// permission (tencentcloud-sdk-go scf/v20180416 errors.go: "CAM鉴权失败",
// "没有权限"; .Role: no access to your COS resources). The other
// UnauthorizedOperation codes are not CAM problems: see otherHints.
var permissionCodes = map[string]bool{
	"UnauthorizedOperation.CAM": true, "UnauthorizedOperation.CreateTrigger": true,
	"UnauthorizedOperation.DeleteFunction": true, "UnauthorizedOperation.DeleteTrigger": true,
	"UnauthorizedOperation.UpdateTriggerStatus": true, "UnauthorizedOperation.Role": true,
	"AuthFailure.UnauthorizedOperation": true,
}

// otherHints say what to do about the UnauthorizedOperation codes that are
// not a missing permission (errors.go's descriptions in brackets).
var otherHints = map[string]string{
	"UnauthorizedOperation.Region":             "SCF refused the region [Region错误]: check TENCENT_REGION (or region in the file), e.g. ap-guangzhou, ap-shanghai, ap-singapore",
	"UnauthorizedOperation.UpdateFunctionCode": "SCF cannot do this now [无法进行此操作]: the function is busy (Creating, Updating, Publishing, Deleting) or in a failed state; wait until it is Active and deploy again, or, if it is CreateFailed, make remove CONFIRM=1 and deploy again",
	"UnauthorizedOperation.NotMC":              "SCF accepts this call only from its console [不是从控制台调用的该接口]: make the change in the SCF console",
	"UnauthorizedOperation.CodeSecret":         "SCF cannot read the code package [无访问代码权限]: deploy again; make deploy uploads the zip inline, so this is SCF's side",
	"UnauthorizedOperation.TempCosAppid":       "the temporary COS upload belongs to another account [TempCos的Appid和请求账户的APPID不一致]: check that the credentials and the region are this account's",
	"UnauthorizedOperation":                    "SCF refused the operation without naming a permission: its message above says why",
}

// accountHints say what to do about answers that are about the account or
// the file, not a permission (tencentcloud-sdk-go scf/v20180416 errors.go,
// listed for CreateFunction, UpdateFunctionConfiguration or CreateTrigger).
var accountHints = map[string]string{
	"ResourceNotFound.Role":                   "the execution role does not exist in this account [角色不存在]: check SCF_ROLE (the file's role), the role's name in the CAM console (docs/deploy.md, section 1)",
	"FailedOperation.QcsRoleNotFound":         "the execution role does not exist in this account [角色不存在]: check SCF_ROLE (the file's role), the role's name in the CAM console (docs/deploy.md, section 1)",
	"LimitExceeded.Function":                  "the account's quota of functions in this region is reached: delete functions you no longer use, or ask Tencent to raise the quota (a ticket)",
	"LimitExceeded.Trigger":                   "the function's quota of triggers is reached: delete triggers you no longer use in the SCF console, or ask Tencent to raise the quota (a ticket)",
	"FailedOperation.InsufficientBalance":     "the account or namespace is in arrears [欠费]: top up the account, then deploy again",
	"ResourceUnavailable.InsufficientBalance": "the account is in arrears [余额不足]: top up the account, then deploy again",
	"FailedOperation.AccountInsufficient":     "the account's balance is insufficient [账户余额不足]: top up the account, then deploy again",
	"FailedOperation.UnOpenedService":         "SCF is not activated for this account [服务未开通]: activate it in the SCF console, then deploy again",
	"FailedOperation.OpenService":             "SCF could not be activated for this account [服务开通失败]: activate it in the SCF console, then deploy again",
	"FailedOperation.DeleteTrigger.UrlUsed":   "a custom domain is bound to this Function URL [Url被占用]: unbind it (SCF console, custom domains), then run the command again",
}

// explain turns an API error into what the user must do about it.
func explain(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case permissionCodes[ae.Code]:
		perm := "scf:" + ae.Action
		if m := permissionRef.FindStringSubmatch(ae.Message); m != nil {
			perm = m[1]
		}
		hint := "grant the deploying user (its CAM policy) the permission " + perm
		switch {
		case perm == "cam:PassRole":
			hint = "grant the deploying user cam:PassRole on the function's role (serverless.yml's role, SCF_ROLE): it lets SCF hand the role's credentials to the function"
		case ae.Code == "UnauthorizedOperation.Role":
			return fmt.Errorf("%w\n  SCF may not read the code from COS with this role: make deploy uploads the zip inline; check the role (SCF_ROLE) and its COS rights", err)
		}
		return fmt.Errorf("%w\n  missing permission %s: %s (docs/deploy.md lists the whole policy)", err, perm, hint)
	case accountHints[ae.Code] != "":
		return fmt.Errorf("%w\n  %s", err, accountHints[ae.Code])
	case otherHints[ae.Code] != "":
		return fmt.Errorf("%w\n  %s", err, otherHints[ae.Code])
	case strings.HasPrefix(ae.Code, "UnauthorizedOperation."):
		return fmt.Errorf("%w\n  %s", err, otherHints["UnauthorizedOperation"])
	case ae.Code == "AuthFailure.SecretIdNotFound" || ae.Code == "AuthFailure.SignatureFailure":
		return fmt.Errorf("%w\n  check the SecretId and SecretKey you deploy with", err)
	case ae.Code == "AuthFailure.TokenFailure":
		return fmt.Errorf("%w\n  the session token is missing or expired: set TENCENTCLOUD_SESSIONTOKEN for temporary credentials", err)
	}
	return err
}

// absentCodes mean "no such function" on GetFunction: both are in the
// SDK's errors.go, the live API answers .FunctionName ("Function not
// found"), and Terraform's provider also counts InvalidParameterValue.FunctionName
// (errors.go: "函数不存在") as absent.
var absentCodes = map[string]bool{
	"ResourceNotFound.Function": true, "ResourceNotFound.FunctionName": true, "InvalidParameterValue.FunctionName": true,
}

// busyCodes are the answers SCF gives a write while the function is busy
// (errors.go: "当前函数状态无法…", "函数在部署中"); the generic ones count
// only when the function is not Active at that moment.
var busyCodes = map[string]bool{
	"FailedOperation.UpdateFunctionCode": true, "FailedOperation.CreateTrigger": true,
	"FailedOperation.DeleteFunction": true, "FailedOperation.FunctionStatusError": true,
	"FailedOperation.FunctionNameStatusError": true, "FailedOperation.OperationConflict": true,
	"UnauthorizedOperation.UpdateFunctionCode": true,
}

var maybeBusyCodes = map[string]bool{
	"FailedOperation.UpdateFunctionConfiguration": true, "FailedOperation.UpdateTrigger": true,
	"FailedOperation.DeleteTrigger": true, "FailedOperation": true,
}

func apiCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// reads are the actions that change nothing: an InternalError answer to
// one is retried, as Tencent's Terraform provider retries GetFunction
// (services/scf: DescribeFunction, waitScfFunctionReady). A write is not:
// it may have been done.
var reads = map[string]bool{"GetFunction": true, "GetFunctionAddress": true, "ListTriggers": true}

// call sends one action, retrying RequestLimitExceeded (and, for a read,
// InternalError) a bounded number of times.
func (c *Client) call(ctx context.Context, req tchttp.Request, resp tchttp.Response) error {
	req.SetContext(ctx)
	wait := c.backoff
	for attempt := 0; ; attempt++ {
		err := c.sdk.Send(req, resp)
		var sdkErr *tcerr.TencentCloudSDKError
		if errors.As(err, &sdkErr) && !strings.HasPrefix(sdkErr.Code, "ClientError") {
			err = &APIError{Action: req.GetAction(), Code: sdkErr.Code, Message: sdkErr.Message, RequestID: sdkErr.RequestId}
			retry := strings.HasPrefix(sdkErr.Code, "RequestLimitExceeded") ||
				reads[req.GetAction()] && strings.HasPrefix(sdkErr.Code, "InternalError")
			if retry && attempt < c.retries {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
				wait *= 2
				continue
			}
		} else if err != nil {
			err = fmt.Errorf("%s: %w", req.GetAction(), err)
		}
		return explain(err)
	}
}

func newRequest(action string) *tchttp.BaseRequest {
	return (&tchttp.BaseRequest{}).Init().WithApiInfo(service, version, action)
}

func ptr[T any](v T) *T { return &v }

// optional returns nil for "", so that the field is not sent.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// apiVariable is a Variable on the wire.
type apiVariable struct {
	Key   *string `json:"Key,omitnil,omitempty" name:"Key"`
	Value *string `json:"Value,omitnil,omitempty" name:"Value"`
}

type apiEnvironment struct {
	Variables []*apiVariable `json:"Variables" name:"Variables"`
}

type apiVpcConfig struct {
	VpcId    *string `json:"VpcId" name:"VpcId"`
	SubnetId *string `json:"SubnetId" name:"SubnetId"`
}

type apiPublicNetConfig struct {
	PublicNetStatus *string `json:"PublicNetStatus,omitnil,omitempty" name:"PublicNetStatus"`
}

type apiStatusReason struct {
	ErrorCode    *string `json:"ErrorCode,omitnil,omitempty" name:"ErrorCode"`
	ErrorMessage *string `json:"ErrorMessage,omitnil,omitempty" name:"ErrorMessage"`
}

// Function is what GetFunction says of a function.
type Function struct {
	Status, Runtime, Handler, Type, Role, Description string
	MemorySize, Timeout, InitTimeout                  int64
	Variables                                         []Variable
	VpcID, SubnetID, PublicNet                        string
	Reasons                                           []string // "ErrorCode: ErrorMessage"
}

type functionRef struct {
	*tchttp.BaseRequest
	FunctionName *string `json:"FunctionName,omitnil,omitempty" name:"FunctionName"`
	Namespace    *string `json:"Namespace,omitnil,omitempty" name:"Namespace"`
}

type getFunctionResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		Status, Runtime, Handler, Type, Role, Description *string
		MemorySize, Timeout, InitTimeout                  *int64
		Environment                                       *apiEnvironment
		VpcConfig                                         *apiVpcConfig
		PublicNetConfig                                   *apiPublicNetConfig
		StatusReasons                                     []*apiStatusReason
	} `json:"Response"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// GetFunction returns the function, or (nil, nil) when it does not exist;
// a function whose version is already gone is reported Deleting.
func (c *Client) GetFunction(ctx context.Context, namespace, name string) (*Function, error) {
	req := &functionRef{BaseRequest: newRequest("GetFunction"), FunctionName: &name, Namespace: optional(namespace)}
	resp := &getFunctionResponse{BaseResponse: &tchttp.BaseResponse{}}
	if err := c.call(ctx, req, resp); err != nil {
		switch code := apiCode(err); {
		case absentCodes[code]:
			return nil, nil
		case code == "ResourceNotFound.Version":
			// The function's $LATEST version is gone but the function is
			// not: a deletion under way. Tencent's Terraform provider keeps
			// waiting on this code while a function is deleted
			// (services/scf, DeleteFunction); the SDK lists it for GetFunction.
			return &Function{Status: "Deleting"}, nil
		case code == "ResourceNotFound.Namespace":
			return nil, fmt.Errorf("%w\n  the namespace %s does not exist in this region: create it in the SCF console (make deploy does not create namespaces), or unset SCF_NAMESPACE for default", err, namespace)
		}
		return nil, err
	}
	r := resp.Response
	if r == nil {
		return nil, errors.New("GetFunction: an empty answer")
	}
	f := &Function{Status: deref(r.Status), Runtime: deref(r.Runtime), Handler: deref(r.Handler), Type: deref(r.Type),
		Role: deref(r.Role), Description: deref(r.Description),
		MemorySize: deref(r.MemorySize), Timeout: deref(r.Timeout), InitTimeout: deref(r.InitTimeout)}
	if r.Environment != nil {
		for _, v := range r.Environment.Variables {
			if v != nil {
				f.Variables = append(f.Variables, Variable{deref(v.Key), deref(v.Value)})
			}
		}
	}
	if r.VpcConfig != nil {
		f.VpcID, f.SubnetID = deref(r.VpcConfig.VpcId), deref(r.VpcConfig.SubnetId)
	}
	if r.PublicNetConfig != nil {
		f.PublicNet = deref(r.PublicNetConfig.PublicNetStatus)
	}
	for _, sr := range r.StatusReasons {
		if sr != nil {
			f.Reasons = append(f.Reasons, deref(sr.ErrorCode)+": "+deref(sr.ErrorMessage))
		}
	}
	return f, nil
}

type getAddressResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		CodeSha256 *string
	} `json:"Response"`
}

// CodeSha256 returns the deployed package's hash, as the API gives it (hex or base64).
func (c *Client) CodeSha256(ctx context.Context, namespace, name string) (string, error) {
	req := &functionRef{BaseRequest: newRequest("GetFunctionAddress"), FunctionName: &name, Namespace: optional(namespace)}
	resp := &getAddressResponse{BaseResponse: &tchttp.BaseResponse{}}
	if err := c.call(ctx, req, resp); err != nil {
		return "", err
	}
	if resp.Response == nil {
		return "", nil
	}
	return deref(resp.Response.CodeSha256), nil
}

// configuration is the part of CreateFunction and UpdateFunctionConfiguration they share.
type configuration struct {
	Description     *string             `json:"Description,omitnil,omitempty" name:"Description"`
	MemorySize      *int64              `json:"MemorySize,omitnil,omitempty" name:"MemorySize"`
	Timeout         *int64              `json:"Timeout,omitnil,omitempty" name:"Timeout"`
	InitTimeout     *int64              `json:"InitTimeout,omitnil,omitempty" name:"InitTimeout"`
	Role            *string             `json:"Role,omitnil" name:"Role"`
	Environment     *apiEnvironment     `json:"Environment,omitnil,omitempty" name:"Environment"`
	VpcConfig       *apiVpcConfig       `json:"VpcConfig,omitnil,omitempty" name:"VpcConfig"`
	PublicNetConfig *apiPublicNetConfig `json:"PublicNetConfig,omitnil,omitempty" name:"PublicNetConfig"`
}

func newConfiguration(s *Spec, sendRole, sendVpc bool) configuration {
	c := configuration{Description: ptr(s.Description), MemorySize: ptr(s.MemorySize), Timeout: ptr(s.Timeout),
		InitTimeout: ptr(s.InitTimeout), Environment: &apiEnvironment{Variables: []*apiVariable{}}}
	if s.Role != "" || sendRole {
		c.Role = ptr(s.Role)
	}
	for _, v := range s.Variables {
		c.Environment.Variables = append(c.Environment.Variables, &apiVariable{Key: ptr(v.Key), Value: ptr(v.Value)})
	}
	if s.VpcID != "" || sendVpc {
		c.VpcConfig = &apiVpcConfig{VpcId: ptr(s.VpcID), SubnetId: ptr(s.SubnetID)}
	}
	if s.PublicNet != "" {
		c.PublicNetConfig = &apiPublicNetConfig{PublicNetStatus: ptr(s.PublicNet)}
	}
	return c
}

type createFunctionRequest struct {
	*tchttp.BaseRequest
	FunctionName *string `json:"FunctionName" name:"FunctionName"`
	Namespace    *string `json:"Namespace,omitnil,omitempty" name:"Namespace"`
	Code         *struct {
		ZipFile *string `json:"ZipFile" name:"ZipFile"`
	} `json:"Code" name:"Code"`
	Runtime *string `json:"Runtime" name:"Runtime"`
	Handler *string `json:"Handler,omitnil,omitempty" name:"Handler"`
	Type    *string `json:"Type" name:"Type"`
	configuration
}

type requestIDOnly struct {
	*tchttp.BaseResponse
	Response *struct{ RequestId *string } `json:"Response"`
}

func newRequestIDOnly() *requestIDOnly { return &requestIDOnly{BaseResponse: &tchttp.BaseResponse{}} }

// CreateFunction creates the function from s with the zip, base64-encoded.
func (c *Client) CreateFunction(ctx context.Context, s *Spec, zipBase64 string) error {
	req := &createFunctionRequest{BaseRequest: newRequest("CreateFunction"), FunctionName: &s.Function,
		Namespace: optional(s.Namespace), Runtime: &s.Runtime, Handler: optional(s.Handler), Type: &s.Type,
		configuration: newConfiguration(s, false, false)}
	req.Code = &struct {
		ZipFile *string `json:"ZipFile" name:"ZipFile"`
	}{&zipBase64}
	return c.call(ctx, req, newRequestIDOnly())
}

type updateCodeRequest struct {
	*tchttp.BaseRequest
	FunctionName *string `json:"FunctionName" name:"FunctionName"`
	Namespace    *string `json:"Namespace,omitnil,omitempty" name:"Namespace"`
	Handler      *string `json:"Handler,omitnil,omitempty" name:"Handler"`
	ZipFile      *string `json:"ZipFile" name:"ZipFile"`
}

// UpdateFunctionCode replaces the function's code (and handler, when set).
func (c *Client) UpdateFunctionCode(ctx context.Context, s *Spec, zipBase64 string) error {
	req := &updateCodeRequest{BaseRequest: newRequest("UpdateFunctionCode"), FunctionName: &s.Function,
		Namespace: optional(s.Namespace), Handler: optional(s.Handler), ZipFile: &zipBase64}
	return c.call(ctx, req, newRequestIDOnly())
}

type updateConfigurationRequest struct {
	*tchttp.BaseRequest
	FunctionName *string `json:"FunctionName" name:"FunctionName"`
	Namespace    *string `json:"Namespace,omitnil,omitempty" name:"Namespace"`
	configuration
}

// UpdateFunctionConfiguration sets the whole configuration of s; clearRole
// and clearVpc send an empty Role or VpcConfig to remove the current one.
func (c *Client) UpdateFunctionConfiguration(ctx context.Context, s *Spec, clearRole, clearVpc bool) error {
	req := &updateConfigurationRequest{BaseRequest: newRequest("UpdateFunctionConfiguration"), FunctionName: &s.Function,
		Namespace: optional(s.Namespace), configuration: newConfiguration(s, clearRole, clearVpc)}
	return c.call(ctx, req, newRequestIDOnly())
}

// Trigger is one trigger of the function.
type Trigger struct {
	Name, Type, Qualifier, Desc string
	// Enable is OPEN or CLOSE as sent; ListTriggers answers 1 or 0, read
	// back as OPEN or CLOSE.
	Enable   string
	Argument string // CustomArgument: a timer's Message
}

type listTriggersRequest struct {
	*tchttp.BaseRequest
	FunctionName *string `json:"FunctionName" name:"FunctionName"`
	Namespace    *string `json:"Namespace,omitnil,omitempty" name:"Namespace"`
	Offset       *uint64 `json:"Offset,omitnil,omitempty" name:"Offset"`
	Limit        *uint64 `json:"Limit,omitnil,omitempty" name:"Limit"`
}

type listTriggersResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		TotalCount *uint64
		Triggers   []*struct {
			TriggerName, Type, Qualifier, TriggerDesc, CustomArgument *string
			Enable                                                    json.RawMessage
		}
	} `json:"Response"`
}

// ListTriggers returns every trigger of the function.
func (c *Client) ListTriggers(ctx context.Context, namespace, name string) ([]Trigger, error) {
	var out []Trigger
	for offset := uint64(0); ; {
		req := &listTriggersRequest{BaseRequest: newRequest("ListTriggers"), FunctionName: &name,
			Namespace: optional(namespace), Offset: ptr(offset), Limit: ptr(uint64(20))} // 20: the documented default page
		resp := &listTriggersResponse{BaseResponse: &tchttp.BaseResponse{}}
		if err := c.call(ctx, req, resp); err != nil {
			return nil, err
		}
		if resp.Response == nil {
			return out, nil
		}
		for _, t := range resp.Response.Triggers {
			if t != nil {
				out = append(out, Trigger{Name: deref(t.TriggerName), Type: deref(t.Type), Qualifier: deref(t.Qualifier),
					Desc: deref(t.TriggerDesc), Enable: enableName(t.Enable), Argument: deref(t.CustomArgument)})
			}
		}
		offset += uint64(len(resp.Response.Triggers))
		if len(resp.Response.Triggers) == 0 || offset >= deref(resp.Response.TotalCount) {
			return out, nil
		}
	}
}

// enableName reads ListTriggers' Enable: 1 or 0 (the live API, as the
// component toolkit records), or "OPEN" or "CLOSE".
func enableName(raw json.RawMessage) string {
	switch strings.Trim(string(raw), `"`) {
	case "1", "OPEN", "true":
		return "OPEN"
	case "0", "CLOSE", "false":
		return "CLOSE"
	}
	return ""
}

func enableOrOpen(e string) *string {
	if e == "" {
		e = "OPEN"
	}
	return &e
}

type triggerRequest struct {
	*tchttp.BaseRequest
	FunctionName *string `json:"FunctionName" name:"FunctionName"`
	Namespace    *string `json:"Namespace,omitnil,omitempty" name:"Namespace"`
	TriggerName  *string `json:"TriggerName" name:"TriggerName"`
	Type         *string `json:"Type" name:"Type"`
	Qualifier    *string `json:"Qualifier,omitnil,omitempty" name:"Qualifier"`
	TriggerDesc  *string `json:"TriggerDesc,omitnil,omitempty" name:"TriggerDesc"`
	Enable       *string `json:"Enable,omitnil,omitempty" name:"Enable"`
	// CustomArgument is sent for timers only; nil leaves it out.
	CustomArgument *string `json:"CustomArgument,omitnil" name:"CustomArgument"`
}

func (t Trigger) argument() *string {
	if t.Type != "timer" {
		return nil
	}
	return &t.Argument
}

type createTriggerResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		TriggerInfo *struct{ TriggerDesc *string }
	} `json:"Response"`
}

// CreateTrigger creates a trigger and returns its TriggerDesc as the platform filled it in.
func (c *Client) CreateTrigger(ctx context.Context, namespace, function string, t Trigger) (string, error) {
	req := &triggerRequest{BaseRequest: newRequest("CreateTrigger"), FunctionName: &function, Namespace: optional(namespace),
		TriggerName: &t.Name, Type: &t.Type, Qualifier: optional(t.Qualifier), TriggerDesc: optional(t.Desc), Enable: enableOrOpen(t.Enable),
		CustomArgument: t.argument()}
	resp := &createTriggerResponse{BaseResponse: &tchttp.BaseResponse{}}
	if err := c.call(ctx, req, resp); err != nil {
		return "", err
	}
	if resp.Response == nil || resp.Response.TriggerInfo == nil {
		return "", nil
	}
	return deref(resp.Response.TriggerInfo.TriggerDesc), nil
}

// UpdateTrigger sets a trigger's TriggerDesc, Enable and (timers) CustomArgument.
func (c *Client) UpdateTrigger(ctx context.Context, namespace, function string, t Trigger) error {
	req := &triggerRequest{BaseRequest: newRequest("UpdateTrigger"), FunctionName: &function, Namespace: optional(namespace),
		TriggerName: &t.Name, Type: &t.Type, Qualifier: optional(t.Qualifier), TriggerDesc: optional(t.Desc), Enable: enableOrOpen(t.Enable),
		CustomArgument: t.argument()}
	return c.call(ctx, req, newRequestIDOnly())
}

// DeleteTrigger deletes a trigger.
func (c *Client) DeleteTrigger(ctx context.Context, namespace, function string, t Trigger) error {
	req := &triggerRequest{BaseRequest: newRequest("DeleteTrigger"), FunctionName: &function, Namespace: optional(namespace),
		TriggerName: &t.Name, Type: &t.Type, Qualifier: optional(t.Qualifier)}
	return c.call(ctx, req, newRequestIDOnly())
}

// DeleteFunction deletes the function, every version.
func (c *Client) DeleteFunction(ctx context.Context, namespace, name string) error {
	req := &functionRef{BaseRequest: newRequest("DeleteFunction"), FunctionName: &name, Namespace: optional(namespace)}
	return c.call(ctx, req, newRequestIDOnly())
}
