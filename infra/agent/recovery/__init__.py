"""After a crash: abandoned runs resolved, leftovers on the host removed, the orphan watch."""
