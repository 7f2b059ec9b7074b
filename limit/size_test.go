package limit

import "unsafe"

func sizeofConn() uintptr { return unsafe.Sizeof(Conn{}) }
