package car

import (
	"context"
	"errors"
	"strings"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"

	"carbroker/internal/fault"
)

// The CAR codes the use case singles out; every other code reaches it only
// as a fault.Kind and a fault.Retry.
const (
	CodeSessionNotFound = "ResourceNotFound.SessionNotFound" // no session for the UserId (or the host of a room)
	CodeStopping        = "UnsupportedOperation.Stopping"    // the session is being destroyed
)

// codeLockTimeout is CreateSession without a live ApplyConcurrent lock.
const codeLockTimeout = "FailedOperation.LockTimeout"

// convert turns an SDK error into the one error vocabulary. It never copies
// the SDK's message into the caller-facing Message.
func convert(ctx context.Context, action string, err error) *fault.Error {
	code := "ClientError"
	var requestID string
	var sdk *tcerr.TencentCloudSDKError
	if errors.As(err, &sdk) {
		code, requestID = sdk.Code, sdk.RequestId
	}
	var fe *fault.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The request's budget or this attempt's share of it ran out: on a
		// connection that died silently, another attempt on a fresh one
		// may answer; the use case knows whether time is left.
		fe = &fault.Error{Kind: fault.Timeout, Message: "CAR did not answer in time; try again", Retry: fault.Reconnect}
	case errors.Is(err, context.Canceled):
		fe = &fault.Error{Kind: fault.Timeout, Message: "the request was cancelled"}
	default:
		fe = Classify(action, code)
	}
	fe.Action, fe.Code, fe.RequestID, fe.Err = action, code, requestID, scrub(err)
	return fe
}

// Classify returns the error the client returns when CAR (or the SDK)
// answers action with code: the one place where CAR's codes are read, per
// action as CAR's API spec lists them, each given a kind, a retry class
// (what the class gets is the use case's retry policy) and the caller's
// message. Fakes of the client use it to fail exactly as the client does.
func Classify(action, code string) *fault.Error {
	fe := &fault.Error{Action: action, Code: code}
	set := func(k fault.Kind, retry fault.Retry, msg string) { fe.Kind, fe.Retry, fe.Message = k, retry, msg }
	switch {
	case code == "ClientError.NetworkError":
		// A refused, reset or half-closed connection, or a failed DNS
		// lookup: the client has dropped its idle connections, so one more
		// attempt runs on a fresh one.
		set(fault.Upstream, fault.Reconnect, "CAR could not be reached; try again")
	case strings.HasPrefix(code, "ClientError"):
		set(fault.Upstream, fault.Final, "CAR answered with an unreadable reply; try again")
	case code == "ResourceNotFound.NoIdle":
		// Only ApplyConcurrent locks a concurrency: repeating another
		// action (CreateSession may answer NoIdle too) cannot get one.
		retry := fault.Final
		if action == "ApplyConcurrent" {
			retry = fault.WaitIdle
		}
		set(fault.NoIdle, retry, "no idle concurrency: all cloud instances are busy; try again shortly")
	case strings.HasPrefix(code, "RequestLimitExceeded"):
		set(fault.RateLimited, fault.Throttled, "too many requests to CAR; slow down")
	case code == "FailedOperation.SlowDown":
		set(fault.RateLimited, fault.Backoff, "a request for this user is already in progress; try again shortly")
	case code == CodeStopping:
		set(fault.Unavailable, fault.Backoff, "the session is being stopped; try again shortly")
	case code == "ResourceUnavailable.Initialization":
		set(fault.Unavailable, fault.Backoff, "the cloud instance is initialising; try again shortly")
	case code == "LimitExceeded.Role":
		set(fault.RoleFull, fault.Final, "the room has no free seat for this role")
	case code == CodeSessionNotFound:
		set(fault.Upstream, fault.Final, "CAR found no session for this user")
	case code == codeLockTimeout:
		set(fault.Upstream, fault.Relock, "CAR lost the concurrency locked for this user; try again")
	case code == "FailedOperation.ProcessTimeout" && (action == "ApplyConcurrent" || action == "DestroySession"):
		// Both are idempotent per UserId: the next attempt finds what the
		// timed-out one did, if anything.
		set(fault.Upstream, fault.Backoff, "CAR timed out processing the request; try again")
	case code == "ResourceUnavailable.AccessFailed" && action == "DestroySession":
		set(fault.Upstream, fault.Backoff, "CAR could not reach the cloud instance to stop it; try again")
	case code == "FailedOperation.PathNotFound":
		// The application's files are not where the project says: a CAR
		// console problem that no retry fixes, and operators must hear of.
		set(fault.Upstream, fault.Final, "CAR could not find the application to start; retrying will not help until the project's application is fixed in the CAR console")
		fe.Notice = fault.Warn
	case code == "InvalidParameter.JsonParseError" || strings.HasPrefix(code, "UnknownParameter"):
		// We build every request body: CAR not reading it is our bug.
		set(fault.Internal, fault.Final, fault.InternalMessage)
		fe.Notice = fault.Bug
	case strings.HasPrefix(code, "InvalidParameter") || strings.HasPrefix(code, "MissingParameter"):
		set(fault.Invalid, fault.Final, invalidMessage(action))
	case strings.HasPrefix(code, "OperationDenied"):
		set(fault.Forbidden, fault.Final, "CAR refused the operation")
	case strings.HasPrefix(code, "AuthFailure") || strings.HasPrefix(code, "UnauthorizedOperation"):
		// our credentials, or an execution role without CAR permissions
		set(fault.Internal, fault.Final, fault.InternalMessage)
	default: // InternalError, FailedOperation*, codes not documented for the action, unknown codes
		set(fault.Upstream, fault.Final, "CAR failed to process the request; try again")
	}
	return fe
}

// invalidMessage is the caller's message for CAR refusing an action's
// parameters: it names what the caller (or the function's configuration)
// controls in that action. The UserId and UserIp were validated before.
func invalidMessage(action string) string {
	switch action {
	case "ApplyConcurrent":
		return "CAR rejected the project or application: check ProjectId, ApplicationId and ApplicationVersionId (or the function's CAR_PROJECT_ID when the request names no project)"
	case "CreateSession":
		return "CAR rejected the session's parameters; get a fresh ClientSession from the client SDK and try again (and check ApplicationParameters, HostUserId and Role if set)"
	case "DestroySession":
		return "CAR rejected the UserId"
	case "DescribeConcurrentCount":
		return "CAR rejected the project or application category: check the ProjectId"
	}
	return "CAR rejected the request's parameters"
}

// scrub keeps an SDK error's code and request id for operators but drops its
// message, which may embed a raw response body; the transport cause (which
// carries the deadline and connection errors) stays reachable.
func scrub(err error) error {
	var sdk *tcerr.TencentCloudSDKError
	if !errors.As(err, &sdk) {
		return err
	}
	return &sdkError{code: sdk.Code, requestID: sdk.RequestId, cause: errors.Unwrap(sdk)}
}

type sdkError struct {
	code, requestID string
	cause           error
}

func (e *sdkError) Error() string {
	s := "CAR error " + e.code
	if e.requestID != "" {
		s += " (RequestId " + e.requestID + ")"
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *sdkError) Unwrap() error { return e.cause }
