package faults

// Restart kills a service process and starts it again at once.
const Restart Kind = "restart"

func init() { register(restart{}) }

type restart struct{}

func (restart) Spec() Spec {
	return Spec{Kind: Restart, Target: TargetProcess,
		Doc: "SIGKILL the service process and start it again at once"}
}

// OnProcess implements ProcessKind: over once applied.
func (restart) OnProcess() ProcessAction {
	return ProcessAction{Apply: ProcessRestart, OnCompose: ContainerRestart}
}
