package faults

// Pause stops a service process (SIGSTOP) until the fault ends (SIGCONT).
const Pause Kind = "pause"

func init() { register(pause{}) }

type pause struct{}

func (pause) Spec() Spec {
	return Spec{Kind: Pause, Target: TargetProcess,
		Doc: "SIGSTOP the service process; SIGCONT when the fault ends"}
}

// OnProcess implements ProcessKind.
func (pause) OnProcess() ProcessAction {
	return ProcessAction{Apply: ProcessPause, Remove: ProcessResume, OnCompose: ContainerPause}
}
