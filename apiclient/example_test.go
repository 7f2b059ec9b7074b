package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/chatgate/chatgate/apiclient"
)

// A backend publishes to a room, writes to every connection of a user and
// moves a connection into a room, and tells a refused call by its code.
func Example() {
	c := apiclient.New("http://127.0.0.1:9091", os.Getenv("CHATGATE_API_KEY"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := c.Publish(ctx, "lobby", map[string]any{"text": "maintenance at 18:00"}); err != nil {
		log.Fatal(err)
	}
	// Socket.IO clients get this one as socket.on('announce', data).
	if err := c.Publish(ctx, "lobby", "hello", apiclient.WithEvent("announce")); err != nil {
		log.Fatal(err)
	}
	n, err := c.Send(ctx, apiclient.UserTarget("alice"), map[string]any{"text": "you have mail"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice's connections reached:", n)

	err = c.Join(ctx, apiclient.ClientTarget("k3x90000001"), "support")
	var apiErr *apiclient.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == apiclient.CodeNotFound:
		fmt.Println("that connection is gone")
	case err != nil:
		log.Fatal(err)
	}
}

// Several calls in one request; each command has its own reply.
func ExampleClient_Batch() {
	c := apiclient.New("127.0.0.1:9091", "")
	replies, err := c.Batch(context.Background(),
		apiclient.Command{Method: "publish", Params: apiclient.PublishParams{Room: "lobby", Data: "hi"}},
		apiclient.Command{Method: "rooms"},
	)
	if err != nil {
		log.Fatal(err)
	}
	var rooms struct{ Rooms []apiclient.Room }
	if err := replies[1].Decode(&rooms); err != nil {
		log.Fatal(err)
	}
	for _, r := range rooms.Rooms {
		fmt.Println(r.Room, r.Count)
	}
}

// Disconnect every connection of a user with an application close code.
func ExampleClient_Disconnect() {
	c := apiclient.New("http://127.0.0.1:9091", os.Getenv("CHATGATE_API_KEY"))
	n, err := c.Disconnect(context.Background(), apiclient.UserTarget("mallory"), 4403, "banned")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("closed", n)
}
