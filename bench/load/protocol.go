package load

import (
	"time"

	"github.com/chatgate/chatgate/bench/hist"
)

// The coordinator drives each worker with JSON lines on the worker's
// standard input and reads JSON lines from its standard output:
//
//	coordinator → worker          worker → coordinator
//	{"op":"open",...}             {"ev":"tick",...} every second
//	                              {"ev":"opened",...}
//	{"op":"prepare","step":k}     {"ev":"prepared","step":k}
//	{"op":"run",...}              {"ev":"tick",...} every second
//	                              {"ev":"sent",...} when done sending
//	{"op":"flush"}                {"ev":"tick",...} at once
//	{"op":"churn",...}            {"ev":"churned",...}
//	{"op":"close"}                {"ev":"closed"}, then the worker exits
//
// The resume scenario has its own commands, each carrying "r" (see
// ResumeCmd and resume.go):
//
//	{"op":"r-open",...}           {"ev":"r-opened",...}
//	{"op":"r-publish",...}        (publishes until r-stop)
//	{"op":"r-drop"}               {"ev":"r-dropped",...} once every member
//	                              dropped, whether by r-drop or from outside
//	{"op":"r-resume",...}         {"ev":"r-resumed",...}
//	{"op":"r-stop"}               {"ev":"r-stopped",...} with each room's last
//	                              message and the unconfirmed ones
//	{"op":"r-verify",...}         {"ev":"r-verified",...}
//
// A worker also exits when its input ends or its deadline passes, so a
// coordinator that dies never leaves workers behind.

// Operations a Command asks for.
const (
	opOpen    = "open"
	opPrepare = "prepare"
	opRun     = "run"
	opFlush   = "flush"
	opChurn   = "churn"
	opClose   = "close"

	opROpen    = "r-open"
	opRPublish = "r-publish"
	opRDrop    = "r-drop"
	opRResume  = "r-resume"
	opRStop    = "r-stop"
	opRVerify  = "r-verify"
)

// Events a worker reports.
const (
	evTick     = "tick"
	evOpened   = "opened"
	evPrepared = "prepared"
	evSent     = "sent"
	evChurned  = "churned"
	evClosed   = "closed"
	evError    = "error"

	evROpened   = "r-opened"
	evRDropped  = "r-dropped"
	evRResumed  = "r-resumed"
	evRStopped  = "r-stopped"
	evRVerified = "r-verified"
)

// Command is one instruction from the coordinator to a worker.
type Command struct {
	Op   string `json:"op"`
	Step int    `json:"step,omitempty"`
	// Seq numbers flush commands; the tick answering one carries it.
	Seq   int       `json:"seq,omitempty"`
	Open  *OpenCmd  `json:"open,omitempty"`
	Run   *RunCmd   `json:"run,omitempty"`
	Churn *ChurnCmd `json:"churn,omitempty"`
	// R carries the resume scenario's parameters (ops r-*).
	R *ResumeCmd `json:"r,omitempty"`
}

// OpenCmd asks a worker to open clients First..First+Count-1. Client i
// joins room i/RoomSize.
type OpenCmd struct {
	Addr     string   `json:"addr"`
	Path     string   `json:"path"`
	Proto    Protocol `json:"proto"`
	LocalIP  string   `json:"local_ip,omitempty"` // source address; "" lets the kernel choose
	First    int      `json:"first"`
	Count    int      `json:"count"`
	RoomSize int      `json:"room_size"`
	// Concurrency is the number of handshakes in flight at once.
	Concurrency int `json:"concurrency"`
	// Retries is how many times a failed connection is retried.
	Retries     int           `json:"retries"`
	DialTimeout time.Duration `json:"dial_timeout"`
	ReadBuf     int           `json:"read_buf"`
	// Loops is the number of epoll loops reading the connections; 0 gives
	// every connection a reader goroutine instead.
	Loops int `json:"loops"`
	// Deadline is when the worker gives up and exits, whatever happens.
	Deadline time.Time `json:"deadline"`
	// Reconnect makes a client whose connection ends dial again, at the
	// next address of Addr's list, and join its room again (scale).
	Reconnect bool `json:"reconnect,omitempty"`
	// Order makes every receiver check that its room's messages arrive
	// with growing timestamps (one publisher per room): a timestamp not
	// above the previous one counts as a duplicate (scale).
	Order bool `json:"order,omitempty"`
	// Compression offers permessage-deflate and sends the join compressed
	// (Config.Compression).
	Compression bool `json:"compression,omitempty"`
}

// RunCmd asks a worker to publish for one step. Client i publishes if
// i%PubStride == 0 and i/PubStride < PubCount.
type RunCmd struct {
	Step      int           `json:"step"`
	Duration  time.Duration `json:"duration"`
	Size      int           `json:"size"`
	PubStride int           `json:"pub_stride"`
	PubCount  int           `json:"pub_count"`
	// RatePerPub is each publisher's rate in messages per second.
	RatePerPub float64 `json:"rate_per_pub"`
	// Members is the number of joined clients per room, across all
	// workers, so a worker knows how many deliveries each message owes.
	Members []int `json:"members"`
	// Slack is how far a send may lag its schedule before the message is
	// stamped with its scheduled time instead of its actual one.
	Slack time.Duration `json:"slack"`
	// API, when set, makes this worker publish RatePerPub messages per
	// second through the server API instead of by its clients (PubCount
	// is then 0). The coordinator gives it to one worker only.
	API *APIRun `json:"api,omitempty"`
}

// APIRun says how a worker publishes through the server API: POST
// URL/api/publish with {"room":"r<Room>","data":{...}}, at most
// Concurrency requests in flight.
type APIRun struct {
	URL         string `json:"url"`
	Key         string `json:"key,omitempty"`
	Concurrency int    `json:"concurrency"`
	Room        int    `json:"room"`
}

// ChurnCmd asks a worker to run Cycles connect–join–send–close cycles,
// Concurrency at a time, with client indexes from First on, in rooms
// RoomBase..RoomBase+Rooms-1.
type ChurnCmd struct {
	Cycles      int `json:"cycles"`
	Concurrency int `json:"concurrency"`
	First       int `json:"first"`
	RoomBase    int `json:"room_base"`
	Rooms       int `json:"rooms"`
	Size        int `json:"size"`
}

// Event is one report from a worker. Counters are cumulative for the
// current step; Hist holds only the deliveries since the previous report.
type Event struct {
	Ev     string `json:"ev"`
	Worker int    `json:"w"`
	Step   int    `json:"step,omitempty"`
	// Seq is the flush command this tick answers, if any.
	Seq int `json:"seq,omitempty"`

	// Connections.
	Open   int         `json:"open,omitempty"`
	Failed int         `json:"failed,omitempty"`
	Lost   int         `json:"lost,omitempty"` // closed by the server or the network
	Rooms  map[int]int `json:"rooms,omitempty"`
	Secs   float64     `json:"secs,omitempty"`

	// Publishing.
	Sent       uint64          `json:"sent,omitempty"`
	Expected   uint64          `json:"expected,omitempty"`
	SendErrors uint64          `json:"send_errors,omitempty"`
	ServerErrs uint64          `json:"server_errors,omitempty"` // error replies received
	LagMax     time.Duration   `json:"lag_max,omitempty"`
	Stale      uint64          `json:"stale,omitempty"`
	Dups       uint64          `json:"dups,omitempty"`
	Hist       *hist.Histogram `json:"hist,omitempty"`

	// Reconnects: connections dialled again after a loss, those that
	// gave up, and when the latest one completed (CLOCK_MONOTONIC ns).
	Reconnected int   `json:"reconnected,omitempty"`
	ReconnFail  int   `json:"reconn_fail,omitempty"`
	ReconnLast  int64 `json:"reconn_last,omitempty"`

	// Churn.
	Cycles      int `json:"cycles,omitempty"`
	CycleFailed int `json:"cycle_failed,omitempty"`

	// R is the resume scenario's report: its counters on every tick,
	// and the phase's outcome on r-* events.
	R *ResumeEvent `json:"r,omitempty"`

	// CPU is the worker's own CPU time so far.
	CPU time.Duration `json:"cpu,omitempty"`

	Errors []string `json:"errors,omitempty"`
}
