package planner

func shortID(id string) string {
	if len(id) > 19 && id[:7] == "sha256:" {
		return id[:19]
	}
	return id
}
