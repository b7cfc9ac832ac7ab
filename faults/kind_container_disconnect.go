package faults

// ContainerDisconnect disconnects a compose container from its networks
// (its name stops resolving) until the fault ends.
const ContainerDisconnect Kind = "container-disconnect"

func init() { register(containerDisconnect{}) }

type containerDisconnect struct{}

func (containerDisconnect) Spec() Spec {
	return Spec{Kind: ContainerDisconnect, Target: TargetContainer,
		Doc: "disconnect the container from the compose network (its name stops resolving); reconnect when the fault ends"}
}

// OnContainer implements ContainerKind.
func (containerDisconnect) OnContainer() ContainerAction {
	return ContainerAction{Apply: ContainerOpDisconnect, Remove: ContainerOpConnect}
}
