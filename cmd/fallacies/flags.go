package main

import (
	"flag"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Usage checks shared by every command, run before anything starts: each
// refusal is a usage error (exit 2) naming the flag or argument.
//
// Two rules hold for every flag of every command without the command
// asking (checkSetFlags, from parse): a duration must be above 0, and an
// integer flag whose name ends in "port" must be a port, 0 to 65535. The
// others are one call each: noArgs, oneOf, checkAddr.

// checkSetFlags applies the rules that hold for every flag to the flags
// given on the command line.
func checkSetFlags(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil {
			return
		}
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		switch v := g.Get().(type) {
		case time.Duration:
			if v <= 0 {
				err = usageErr("--%s %v: want a duration above 0, e.g. %s", f.Name, v, f.DefValue)
			}
		case int:
			if strings.HasSuffix(f.Name, "port") && (v < 0 || v > 65535) {
				err = usageErr("--%s %d: want a port, 0 to 65535 (0: any free port)", f.Name, v)
			}
		}
	})
	return err
}

// noArgs refuses positional arguments for a command that takes none.
func noArgs(cmd string, pos []string) error {
	if len(pos) > 0 {
		return usageErr("unexpected argument %q: %s takes no arguments (see fallacies %s --help)", pos[0], cmd, cmd)
	}
	return nil
}

// oneOf refuses a flag value outside its enumeration.
func oneOf(flagName, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usageErr("--%s %q: want %s", flagName, v, orList(allowed))
}

// orList formats "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// checkAddr refuses an address that is not HOST:PORT (or a URL whose
// port, if it names one, is a port). A bind address may have port 0 (any
// free port); an address to dial may not. what names the flag or argument,
// e.g. "--order".
func checkAddr(what, v string, bind bool) error {
	hostport := v
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return usageErr("%s %q: not a URL with a host, e.g. http://127.0.0.1:8474", what, v)
		}
		if u.Port() == "" {
			return nil // the scheme's port
		}
		hostport = u.Host
	}
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return usageErr("%s %q: want HOST:PORT, e.g. 127.0.0.1:8474", what, v)
	}
	n, err := strconv.Atoi(port)
	low := 1
	if bind {
		low = 0
	}
	if err != nil || n < low || n > 65535 {
		return usageErr("%s %q: port %q out of range: want %d to 65535", what, v, port, low)
	}
	return nil
}
