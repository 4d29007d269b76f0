package workerproto

// Server is the address the client's requests go to now.
func (c *Client) Server() string { return c.server() }
