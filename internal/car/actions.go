package car

import (
	"context"

	"carbroker/internal/fault"

	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
)

// opt returns a pointer to s, or nil for "" so that absent optionals are not
// sent (the SDK sends a pointer to "" as "").
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func newBase(action string) *tchttp.BaseRequest {
	return (&tchttp.BaseRequest{}).Init().WithApiInfo(service, version, action)
}

// ApplyConcurrentInput is the ApplyConcurrent request.
type ApplyConcurrentInput struct {
	UserID, UserIP, ProjectID           string // required
	ApplicationVersionID, ApplicationID string // optional
}

type applyConcurrentRequest struct {
	*tchttp.BaseRequest
	UserId               *string `json:"UserId,omitnil,omitempty" name:"UserId"`
	UserIp               *string `json:"UserIp,omitnil,omitempty" name:"UserIp"`
	ProjectId            *string `json:"ProjectId,omitnil,omitempty" name:"ProjectId"`
	ApplicationVersionId *string `json:"ApplicationVersionId,omitnil,omitempty" name:"ApplicationVersionId"`
	ApplicationId        *string `json:"ApplicationId,omitnil,omitempty" name:"ApplicationId"`
}

type requestIDOnly struct {
	*tchttp.BaseResponse
	Response *struct {
		RequestId *string `json:"RequestId,omitnil,omitempty" name:"RequestId"`
	} `json:"Response"`
}

func (r *requestIDOnly) requestID() string {
	if r.Response == nil {
		return ""
	}
	return deref(r.Response.RequestId)
}

// ApplyConcurrent locks a concurrency for the user: the one it still holds
// (within retention) or a new one. It returns CAR's RequestId.
func (c *Client) ApplyConcurrent(ctx context.Context, in ApplyConcurrentInput) (string, error) {
	req := &applyConcurrentRequest{BaseRequest: newBase("ApplyConcurrent"),
		UserId: opt(in.UserID), UserIp: opt(in.UserIP), ProjectId: opt(in.ProjectID),
		ApplicationVersionId: opt(in.ApplicationVersionID), ApplicationId: opt(in.ApplicationID)}
	resp := &requestIDOnly{BaseResponse: &tchttp.BaseResponse{}}
	if err := c.call(ctx, req, resp, resp.requestID); err != nil {
		return "", err
	}
	return resp.requestID(), nil
}

// CreateSessionInput is the CreateSession request.
type CreateSessionInput struct {
	UserID, UserIP        string // required
	ClientSession         string // required unless RunMode is RunWithoutClient
	RunMode               string
	ApplicationParameters string
	HostUserID            string
	Role                  string
}

type createSessionRequest struct {
	*tchttp.BaseRequest
	UserId                *string `json:"UserId,omitnil,omitempty" name:"UserId"`
	UserIp                *string `json:"UserIp,omitnil,omitempty" name:"UserIp"`
	ClientSession         *string `json:"ClientSession,omitnil,omitempty" name:"ClientSession"`
	RunMode               *string `json:"RunMode,omitnil,omitempty" name:"RunMode"`
	ApplicationParameters *string `json:"ApplicationParameters,omitnil,omitempty" name:"ApplicationParameters"`
	HostUserId            *string `json:"HostUserId,omitnil,omitempty" name:"HostUserId"`
	Role                  *string `json:"Role,omitnil,omitempty" name:"Role"`
}

type createSessionResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		ServerSession *string `json:"ServerSession,omitnil,omitempty" name:"ServerSession"`
		RequestId     *string `json:"RequestId,omitnil,omitempty" name:"RequestId"`
	} `json:"Response"`
}

// CreateSessionOutput is the CreateSession reply.
type CreateSessionOutput struct {
	ServerSession string
	RequestID     string
}

// CreateSession creates the session on the locked concurrency.
func (c *Client) CreateSession(ctx context.Context, in CreateSessionInput) (CreateSessionOutput, error) {
	req := &createSessionRequest{BaseRequest: newBase("CreateSession"),
		UserId: opt(in.UserID), UserIp: opt(in.UserIP), ClientSession: opt(in.ClientSession),
		RunMode: opt(in.RunMode), ApplicationParameters: opt(in.ApplicationParameters),
		HostUserId: opt(in.HostUserID), Role: opt(in.Role)}
	resp := &createSessionResponse{BaseResponse: &tchttp.BaseResponse{}}
	rid := func() string {
		if resp.Response == nil {
			return ""
		}
		return deref(resp.Response.RequestId)
	}
	if err := c.call(ctx, req, resp, rid); err != nil {
		return CreateSessionOutput{}, err
	}
	if resp.Response == nil || deref(resp.Response.ServerSession) == "" {
		return CreateSessionOutput{}, malformed("CreateSession", rid())
	}
	return CreateSessionOutput{ServerSession: *resp.Response.ServerSession, RequestID: rid()}, nil
}

type destroySessionRequest struct {
	*tchttp.BaseRequest
	UserId *string `json:"UserId,omitnil,omitempty" name:"UserId"`
}

// DestroySession ends the user's session and releases its concurrency.
func (c *Client) DestroySession(ctx context.Context, userID string) (string, error) {
	req := &destroySessionRequest{BaseRequest: newBase("DestroySession"), UserId: opt(userID)}
	resp := &requestIDOnly{BaseResponse: &tchttp.BaseResponse{}}
	if err := c.call(ctx, req, resp, resp.requestID); err != nil {
		return "", err
	}
	return resp.requestID(), nil
}

type describeConcurrentCountRequest struct {
	*tchttp.BaseRequest
	ProjectId           *string `json:"ProjectId,omitnil,omitempty" name:"ProjectId"`
	ApplicationCategory *string `json:"ApplicationCategory,omitnil,omitempty" name:"ApplicationCategory"`
}

type describeConcurrentCountResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		Total     *uint64 `json:"Total,omitnil,omitempty" name:"Total"`
		Running   *uint64 `json:"Running,omitnil,omitempty" name:"Running"`
		RequestId *string `json:"RequestId,omitnil,omitempty" name:"RequestId"`
	} `json:"Response"`
}

// ConcurrentCount is the DescribeConcurrentCount reply. Running includes
// concurrencies waiting for a reconnect.
type ConcurrentCount struct {
	Total, Running uint64
	RequestID      string
}

// DescribeConcurrentCount reports the project's pool usage.
func (c *Client) DescribeConcurrentCount(ctx context.Context, projectID, category string) (ConcurrentCount, error) {
	req := &describeConcurrentCountRequest{BaseRequest: newBase("DescribeConcurrentCount"),
		ProjectId: opt(projectID), ApplicationCategory: opt(category)}
	resp := &describeConcurrentCountResponse{BaseResponse: &tchttp.BaseResponse{}}
	rid := func() string {
		if resp.Response == nil {
			return ""
		}
		return deref(resp.Response.RequestId)
	}
	if err := c.call(ctx, req, resp, rid); err != nil {
		return ConcurrentCount{}, err
	}
	if resp.Response == nil {
		return ConcurrentCount{}, malformed("DescribeConcurrentCount", "")
	}
	out := ConcurrentCount{RequestID: rid()}
	if resp.Response.Total != nil {
		out.Total = *resp.Response.Total
	}
	if resp.Response.Running != nil {
		out.Running = *resp.Response.Running
	}
	return out, nil
}

// malformed is the error for a success envelope that lacks its fields.
func malformed(action, requestID string) error {
	return &fault.Error{Kind: fault.Upstream, Message: "CAR answered with an unreadable reply; try again",
		Action: action, Code: "ClientError.MissingField", RequestID: requestID}
}
