//go:build !linux

package load

import (
	"errors"
	"time"
)

// The epoll client is Linux-only; elsewhere every connection has a reader
// goroutine.
const pollerSupported = false

var errNoPoller = errors.New("load: epoll readers need Linux")

type pollerSet struct{}

func (*pollerSet) add(*Worker, Protocol, int, *client) error { return errNoPoller }
func (*pollerSet) shutdown()                                 {}

func writeFD(int, []byte, time.Duration) error { return errNoPoller }
func shutdownFD(int)                           {}
