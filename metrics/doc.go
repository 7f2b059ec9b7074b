// Package metrics holds chatgate's Prometheus metrics, registered on a
// dedicated registry together with the Go runtime and process collectors.
// docs/metrics.md lists every metric with suggested alerts.
//
// The gateway creates one Metrics at start, hands it to the packages that
// count, and serves Handler on the admin port:
//
//	m := metrics.New(metrics.Options{
//		Sessions: hub.Sessions,
//		Rooms:    table.Len,
//	})
//	m.Opened()                                 // TCP accept
//	m.Handshake(metrics.TransportWebSocket)    // upgrade done
//	m.MessagesDelivered(n)                     // once per mailbox pass
//	m.Closed(metrics.CloseCode(1001))          // connection gone
//	http.Handle("/metrics", m.Handler())
//
// Methods are safe from any goroutine, never allocate and never block; a nil
// *Metrics turns every one of them into a no-op.
package metrics
