#!/bin/sh
# Regenerates the probe fixtures. Needs ffmpeg (Debian 12's 5.1 made the
# committed files); CI does not run this, it uses the committed files.
# Expected durations in probe_test.go are ffprobe's figures for these files
# (see the comments there); re-record them if you regenerate.
set -eu
cd "$(dirname "$0")"
ff="ffmpeg -hide_banner -loglevel error -y -bitexact"
tone="-f lavfi -i sine=frequency=440:sample_rate=8000:duration=2"
tone3="-f lavfi -i sine=frequency=440:sample_rate=22050:duration=3"
# half a tone, half noise, so a VBR encoder really varies the frame size
vbrsrc="-f lavfi -i aevalsrc=0.4*sin(2*PI*440*t)*lt(t\,1.5)+0.3*(random(0)*2-1)*gte(t\,1.5):s=22050:d=3"
vid="-f lavfi -i testsrc=size=64x48:rate=5:duration=2"
vid263="-f lavfi -i testsrc=size=128x96:rate=5:duration=2"

# WAV family
$ff $tone -c:a pcm_s16le wav-pcm16-mono.wav
$ff -f lavfi -i sine=frequency=440:sample_rate=8000:duration=1.5 -ac 2 -c:a pcm_u8 wav-u8-stereo.wav
$ff $tone -c:a pcm_u8 -rf64 always wav-rf64.wav
$ff $tone -c:a pcm_s16be aiff.aiff
$ff $tone -c:a pcm_alaw -f aiff aifc-alaw.aifc
$ff $tone -c:a adpcm_ima_qt -f aiff aifc-ima4.aifc
$ff $tone -c:a pcm_s16be -f caf caf-pcm.caf
$ff $tone -c:a alac -f caf caf-alac.caf
$ff $tone -c:a pcm_mulaw -f au au-mulaw.au

# MPEG audio
$ff $tone3 -c:a libmp3lame -b:a 32k mp3-cbr-xing.mp3
$ff $tone3 -c:a libmp3lame -b:a 32k -write_xing 0 -id3v2_version 0 mp3-cbr-noxing-noid3.mp3
$ff $vbrsrc -c:a libmp3lame -q:a 9 -metadata title=probe mp3-vbr-xing.mp3
$ff $vbrsrc -c:a libmp3lame -q:a 9 -write_xing 0 -write_id3v1 1 -metadata title=probe mp3-vbr-noxing-id3v1.mp3
$ff -f lavfi -i sine=frequency=440:sample_rate=44100:duration=2 -ac 2 -c:a libmp3lame -b:a 64k mp3-44k-stereo.mp3
$ff $tone3 -c:a mp2 -b:a 32k mp2.mp2
$ff $tone3 -c:a aac -b:a 24k -f adts aac-adts.aac
$ff -f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 -c:a ac3 -b:a 64k ac3.ac3
$ff -f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 -c:a eac3 -b:a 64k eac3.eac3

# FLAC and Ogg
$ff $tone -c:a flac flac.flac
$ff $tone -c:a libvorbis -q:a 0 ogg-vorbis.ogg
$ff $tone3 -c:a libopus -b:a 16k ogg-opus.opus
$ff $tone -c:a flac -f ogg ogg-flac.oga
$ff -f lavfi -i sine=frequency=440:sample_rate=16000:duration=2 -c:a libspeex ogg-speex.spx
$ff $vid -c:v libtheora -q:v 1 ogg-theora.ogv

# ISO BMFF / QuickTime
$ff $tone3 -c:a aac -b:a 24k m4a-moov-end.m4a
$ff $tone3 -c:a aac -b:a 24k -movflags +faststart m4a-faststart.m4a
$ff $tone3 -c:a aac -b:a 24k -movflags frag_keyframe+empty_moov -f mp4 m4a-fragmented.m4a
$ff $vid $tone -c:v libx264 -preset ultrafast -crf 40 -c:a aac -b:a 16k -shortest mp4-video.mp4
$ff $vid $tone -c:v mjpeg -q:v 31 -c:a aac -b:a 16k -shortest -f mov mov-video.mov
$ff $vid263 $tone -c:v h263 -q:v 31 -c:a aac -b:a 16k -shortest -f 3gp 3gp-video.3gp

# Matroska / WebM
$ff $tone3 -c:a libopus -b:a 16k webm-opus.webm
$ff $vid -c:v libvpx -b:v 20k webm-vp8.webm
# as a browser's MediaRecorder writes it: sizes unknown, no duration
$ff $tone -c:a libopus -b:a 16k -live 1 -f webm webm-live.webm
$ff $tone -c:a flac mka-flac.mka
$ff $vid $tone -c:v mjpeg -q:v 31 -c:a flac -shortest mkv-video.mkv

# ASF
$ff $tone -c:a wmav2 -b:a 24k wma.wma
$ff $vid $tone -c:v wmv2 -q:v 31 -c:a wmav2 -b:a 24k -shortest wmv.wmv

# Other video containers
$ff $vid $tone -c:v mpeg1video -r 25 -q:v 31 -c:a mp2 -b:a 32k -shortest -f mpegts ts-video.ts
$ff $tone3 -c:a mp2 -b:a 32k -f mpegts ts-audio.ts
$ff $vid $tone -c:v mpeg1video -r 25 -q:v 31 -c:a mp2 -b:a 32k -shortest -f mpeg ps-video.mpg
$ff $vid $tone -c:v mjpeg -q:v 31 -c:a pcm_u8 -shortest avi.avi
$ff $vid $tone -c:v flv1 -q:v 31 -c:a pcm_s16le -shortest flv.flv

# AMR-NB: no encoder in Debian's ffmpeg, so write the storage format by hand:
# "#!AMR\n" then 150 frames of mode 7 (12.2 kbit/s: a table-of-contents byte
# 0x3c and 31 payload bytes), 20 ms each = 3 s.
{
	printf '#!AMR\n'
	i=0
	while [ $i -lt 150 ]; do
		printf '\074'
		head -c 31 /dev/zero
		i=$((i + 1))
	done
} > amr-nb.amr

ls -l
