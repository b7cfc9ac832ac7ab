package faults

// Kill sends SIGKILL to a service process; it stays down until the fault
// ends.
const Kill Kind = "kill"

func init() { register(kill{}) }

type kill struct{}

func (kill) Spec() Spec {
	return Spec{Kind: Kill, Target: TargetProcess,
		Doc: "SIGKILL the service process; it stays down until the fault ends, then restarts"}
}

// OnProcess implements ProcessKind.
func (kill) OnProcess() ProcessAction {
	return ProcessAction{Apply: ProcessKill, Remove: ProcessRestart, OnCompose: ContainerKill}
}
