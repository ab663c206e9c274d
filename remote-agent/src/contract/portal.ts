// The end users' portal API on the public listener (modules/portal).
export {};
