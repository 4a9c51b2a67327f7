package loadtest

import (
	"os"
	"time"

	"github.com/prometheus/procfs"
)

// procSample is a process's CPU time and memory at one moment.
type procSample struct {
	at      time.Time
	cpu     time.Duration // user + system
	rss     int64         // VmRSS, bytes
	peakRSS int64         // VmHWM, bytes
}

// sampleProc reads /proc/<pid>/stat and /proc/<pid>/status (this process's
// for pid 0).
func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	if pid == 0 {
		pid = os.Getpid()
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return s, err
	}
	stat, err := p.Stat()
	if err != nil {
		return s, err
	}
	s.cpu = time.Duration(stat.CPUTime() * float64(time.Second))
	status, err := p.NewStatus()
	if err != nil {
		return s, err
	}
	s.rss, s.peakRSS = int64(status.VmRSS), int64(status.VmHWM)
	return s, nil
}

// cpuShare is the CPU a process used between two samples, in cores.
func cpuShare(a, b procSample) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(wall)
}

// machineSample is the machine's busy CPU time from /proc/stat: neither
// idle nor waiting for I/O.
type machineSample struct {
	at   time.Time
	busy float64 // CPU seconds over all CPUs
}

func sampleMachine() (machineSample, error) {
	s := machineSample{at: time.Now()}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return s, err
	}
	stat, err := fs.Stat()
	if err != nil {
		return s, err
	}
	c := stat.CPUTotal
	s.busy = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal + c.Guest + c.GuestNice
	return s, nil
}

// machineCores is the CPU the whole machine used between two samples, in
// cores: the verifier, the fleet and everything else on the machine.
func machineCores(a, b machineSample) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0
	}
	return (b.busy - a.busy) / wall
}
