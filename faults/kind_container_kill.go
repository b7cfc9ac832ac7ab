package faults

// ContainerKill kills a compose container (docker kill) until the fault
// ends (docker start).
const ContainerKill Kind = "container-kill"

func init() { register(containerKill{}) }

type containerKill struct{}

func (containerKill) Spec() Spec {
	return Spec{Kind: ContainerKill, Target: TargetContainer,
		Doc: "docker kill the container (compose); docker start when the fault ends"}
}

// OnContainer implements ContainerKind.
func (containerKill) OnContainer() ContainerAction {
	return ContainerAction{Apply: ContainerOpKill, Remove: ContainerOpStart}
}
