// Package sioclient serves the official socket.io-client browser bundle at
// /socket.io/socket.io.js (and .min.js, .esm.min.js, .msgpack.min.js and
// their source maps), as socket.io's Node server does with serveClient,
// so that pages written for Socket.IO load their client from the gateway.
//
// The files are never part of this repository: they are the dist/ folder
// of the socket.io-client npm package that sioclient/package.json pins to
// an exact version, installed with `npm ci --prefix sioclient`. Load reads
// them once at startup and keeps them in memory; the handlers answer from
// the event loops without I/O:
//
//	b, err := sioclient.Load(dir)
//	switch {
//	case errors.Is(err, sioclient.ErrNotInstalled):
//		log.Warn(...) // b's routes answer 404 saying how to install it
//	case err != nil:
//		return err // a directory that is not the bundle
//	}
//	b.CORS = eioConfig.CORSHeaders // optional: -sio-cors-origins
//	for path, h := range b.Routes() {
//		srv.Handle(path, h)
//	}
//
// The answers follow socket.io's server (lib/index.ts, serve): the ETag is
// the quoted package version, a matching If-None-Match gets 304,
// "Cache-Control: public, max-age=0", JavaScript as
// application/javascript and maps as application/json, and a gzip body for
// a client that accepts it.
package sioclient
