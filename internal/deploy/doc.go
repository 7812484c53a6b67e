// Package deploy has no code, only tests: they check the deployment
// description, serverless.yml at the repository root and its variants in
// docs/deploy/*/serverless.yml, against the rules that Tencent SCF and the scf
// component enforce only at deploy time, in Tencent's cloud (no offline
// validator exists): runtime, memory and timeout ranges, environment variable
// names, variable syntax, the trigger settings the broker depends on, and that
// src is the folder the packer stages.
package deploy
