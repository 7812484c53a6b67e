package scfdeploy

import (
	"strings"
	"testing"
)

// TestAPIGWValuesAreLeftToTheComponent: make deploy leaves an API Gateway
// trigger to Tencent's tools and reads nothing of it but that it is there,
// so a file those tools accept must load: the component toolkit takes
// parameters.protocols as a list or as a string ("https", "http&https":
// getProtocolString in src/modules/apigw/utils.ts), passes serviceTimeout
// on as written and tests isIntegratedResponse for truth. 5a76942 loaded
// each of these; the schema's typed apigw block refused them, with a YAML
// unmarshal error, in make deploy (found by a differential of old and new
// Load over mutated docs/deploy files, attack).
func TestAPIGWValuesAreLeftToTheComponent(t *testing.T) {
	for _, params := range []string{
		"protocols: https",
		"protocols: http&https",
		"protocols: [http, https]",
		"endpoints:\n            - path: /\n              method: ANY\n              serviceTimeout: \"15\"",
		"endpoints:\n            - path: /\n              method: ANY\n              enableCORS: \"false\"",
		"endpoints:\n            - path: /\n              method: ANY\n              function:\n                isIntegratedResponse: \"true\"",
	} {
		apigw := "    - apigw:\n        parameters:\n          serviceId: service-1\n          " + params + "\n    - http:"
		file := writeFile(t, t.TempDir(), "serverless.yml", strings.Replace(minimal, "    - http:", apigw, 1))
		s, err := Load(file, LoadOptions{Getenv: func(k string) string { return map[string]string{"MEM": "64"}[k] }, DotenvDirs: []string{}})
		if err != nil || !s.APIGW {
			t.Errorf("apigw with %s: %v", params, err)
		}
	}
}
