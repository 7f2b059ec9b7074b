package native

// BinaryAttachments implements chat.Codec: the native protocol is text
// only, so a message's binary attachments (from Socket.IO senders) are
// inlined into its data as {"_binary":"<base64>"} objects (see
// AppendMessage) instead of sent as binary frames.
func (Codec) BinaryAttachments() bool { return false }
