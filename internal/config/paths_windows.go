//go:build windows

package config

const caseInsensitivePaths = true
