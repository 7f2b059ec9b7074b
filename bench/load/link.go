package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// evExit is the synthetic event a link delivers when its worker's output
// ends: the worker exited or crashed.
const evExit = "exit"

// Link carries commands to one worker and its events back.
type Link interface {
	// Send writes one command. Safe for use by one goroutine at a time.
	Send(Command) error
	// Close ends the worker: it closes its input, waits up to grace for it
	// to exit, then kills it.
	Close(grace time.Duration) error
}

// Spawner starts worker i, whose events (with Worker set to i) go to
// events. It returns once the worker is running.
type Spawner func(i int, events chan<- Event) (Link, error)

// readEvents forwards the JSON lines of r to events until r ends, then
// sends an exit event.
func readEvents(i int, r io.Reader, events chan<- Event) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = Event{Ev: evError, Errors: []string{"bad worker output: " + err.Error()}}
		}
		ev.Worker = i
		events <- ev
	}
	events <- Event{Ev: evExit, Worker: i}
}

// ExecSpawner starts workers as child processes running name with args
// (normally this executable and a hidden "worker" subcommand). Their
// standard error goes to stderr.
func ExecSpawner(name string, args []string, stderr io.Writer) Spawner {
	return func(i int, events chan<- Event) (Link, error) {
		cmd := exec.Command(name, args...)
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		l := &procLink{cmd: cmd, in: in, enc: json.NewEncoder(in), done: make(chan struct{})}
		go func() {
			readEvents(i, out, events)
			l.waitErr = cmd.Wait()
			close(l.done)
		}()
		return l, nil
	}
}

type procLink struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	enc     *json.Encoder
	done    chan struct{}
	waitErr error
}

func (l *procLink) Send(c Command) error { return l.enc.Encode(c) }

func (l *procLink) Close(grace time.Duration) error {
	l.in.Close()
	select {
	case <-l.done:
		return l.waitErr
	case <-time.After(grace):
		// Our own child: kill it by its pid.
		_ = l.cmd.Process.Kill()
		<-l.done
		return errors.New("load: worker killed after not exiting in time")
	}
}

// InProcessSpawner runs workers as goroutines of this process. It is for
// tests and small runs: all connections then share one process's file
// limit.
func InProcessSpawner() Spawner {
	return func(i int, events chan<- Event) (Link, error) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		w := NewWorker(outW)
		l := &pipeLink{in: inW, enc: json.NewEncoder(inW), done: make(chan struct{})}
		go func() {
			_ = w.Serve(context.Background(), inR)
			outW.Close()
			inR.Close()
		}()
		go func() {
			readEvents(i, outR, events)
			close(l.done)
		}()
		return l, nil
	}
}

type pipeLink struct {
	mu   sync.Mutex
	in   *io.PipeWriter
	enc  *json.Encoder
	done chan struct{}
}

func (l *pipeLink) Send(c Command) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc.Encode(c)
}

func (l *pipeLink) Close(grace time.Duration) error {
	l.in.Close()
	select {
	case <-l.done:
		return nil
	case <-time.After(grace):
		return errors.New("load: in-process worker did not stop in time")
	}
}

// RunWorker is the body of the hidden worker subcommand: it serves the
// coordinator on standard input and output. An event is encoded with a
// single write, so nothing needs flushing.
func RunWorker(ctx context.Context) error {
	return NewWorker(os.Stdout).Serve(ctx, os.Stdin)
}
