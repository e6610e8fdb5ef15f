//go:build !windows

package config

const caseInsensitivePaths = false
