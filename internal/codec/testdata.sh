#!/bin/sh
# Regenerates the codec test vectors under */testdata with ffmpeg (5.1 was
# used: libx264, libx265, libaom-av1, libsvtav1, libvpx-vp9, aac, libopus,
# libmp3lame, mp2). The tests read the committed files and never need ffmpeg;
# run this only to refresh or extend the vectors, then update the expected
# values in the tests from what ffprobe reports.
set -eu
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
src720="-f lavfi -i testsrc2=size=1280x720:rate=30"

# H.264: 720p High, 1080p Constrained Baseline (cropped from 1088), 360p Main.
ff $src720 -frames:v 3 -c:v libx264 -crf 40 -preset veryfast -g 30 -f mp4 h264/testdata/h264_720p.mp4
ff -i h264/testdata/h264_720p.mp4 -c copy -bsf:v h264_mp4toannexb -f h264 h264/testdata/h264_720p.h264
ff -f lavfi -i testsrc2=size=1920x1080:rate=25 -frames:v 1 -c:v libx264 -profile:v baseline -crf 45 -f mp4 h264/testdata/h264_1080p_baseline.mp4
ff -f lavfi -i testsrc2=size=640x360:rate=30 -frames:v 2 -c:v libx264 -profile:v main -crf 45 -x264-params bframes=0 -f mp4 h264/testdata/h264_main_360p.mp4

# H.265: 720p Main, and Main 10 at 426x240 (coded 432 wide, conformance window).
ff $src720 -frames:v 3 -c:v libx265 -crf 40 -preset ultrafast -tag:v hvc1 -x265-params log-level=error -f mp4 h265/testdata/h265_720p.mp4
ff -i h265/testdata/h265_720p.mp4 -c copy -bsf:v hevc_mp4toannexb -f hevc h265/testdata/h265_720p.h265
ff -f lavfi -i testsrc2=size=426x240:rate=30 -frames:v 1 -pix_fmt yuv420p10le -c:v libx265 -preset ultrafast -crf 45 -tag:v hvc1 -x265-params log-level=error -f mp4 h265/testdata/h265_main10_426x240.mp4

# AV1: libaom and SVT-AV1 720p, 10-bit, a decoder model, a reduced still picture header.
ff $src720 -frames:v 3 -c:v libaom-av1 -cpu-used 8 -crf 55 -g 30 -f mp4 av1/testdata/av1_720p.mp4
ff -i av1/testdata/av1_720p.mp4 -c copy -f obu av1/testdata/av1_720p.obu
ff $src720 -frames:v 3 -c:v libsvtav1 -preset 12 -crf 55 -g 30 -f mp4 av1/testdata/av1_svt_720p.mp4
ff -f lavfi -i testsrc2=size=320x180:rate=30 -frames:v 2 -pix_fmt yuv420p10le -c:v libaom-av1 -cpu-used 8 -crf 55 -f mp4 av1/testdata/av1_10bit.mp4
ff -f lavfi -i testsrc2=size=320x180:rate=30 -frames:v 1 -c:v libaom-av1 -cpu-used 8 -crf 55 -aom-params timing-info=model -f obu av1/testdata/av1_decmodel.obu
ff -f lavfi -i testsrc2=size=64x64:rate=30 -frames:v 1 -c:v libaom-av1 -cpu-used 8 -crf 55 -still-picture 1 -f obu av1/testdata/av1_still.obu

# VP9: profile 0 720p, profile 1 4:4:4, profile 2 10-bit.
ff $src720 -frames:v 3 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 63 -b:v 0 -g 30 -f mp4 vp9/testdata/vp9_720p.mp4
ff -f lavfi -i testsrc2=size=320x180:rate=30 -frames:v 2 -pix_fmt yuv444p -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 50 -b:v 0 -f mp4 vp9/testdata/vp9_p1_444.mp4
ff -f lavfi -i testsrc2=size=320x180:rate=30 -frames:v 2 -pix_fmt yuv420p10le -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 50 -b:v 0 -f mp4 vp9/testdata/vp9_p2_10bit.mp4

# AAC: ADTS 48 kHz stereo, FLV 44.1 kHz mono (its sequence header is the AudioSpecificConfig).
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t 0.1 -c:a aac -b:a 64k -f adts aac/testdata/aac_48k_stereo.aac
ff -f lavfi -i sine=frequency=440:sample_rate=44100 -ac 1 -t 0.1 -c:a aac -b:a 64k -f flv aac/testdata/aac_44k_mono.flv

# Opus (Ogg): 20 ms stereo, 60 ms SILK mono from 16 kHz, 5.1 (mapping family 1), 2.5 ms CELT.
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t 0.2 -c:a libopus -b:a 32k -f opus opus/testdata/opus_48k_stereo.opus
ff -f lavfi -i sine=frequency=440:sample_rate=16000 -ac 1 -t 0.3 -c:a libopus -b:a 16k -frame_duration 60 -f opus opus/testdata/opus_16k_mono_60ms.opus
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -af "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0" -t 0.06 -c:a libopus -b:a 96k -mapping_family 1 -f opus opus/testdata/opus_51.opus
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t 0.02 -c:a libopus -b:a 64k -application lowdelay -frame_duration 2.5 -f opus opus/testdata/opus_2_5ms.opus

# MPEG audio: MPEG-1, MPEG-2 and MPEG-2.5 layer III, MPEG-1 layer II.
ff -f lavfi -i sine=frequency=440:sample_rate=44100 -ac 2 -t 0.1 -c:a libmp3lame -b:a 128k -id3v2_version 0 -write_xing 0 -f mp3 mp3/testdata/mp3_44k_stereo.mp3
ff -f lavfi -i sine=frequency=440:sample_rate=22050 -ac 1 -t 0.1 -c:a libmp3lame -b:a 32k -id3v2_version 0 -write_xing 0 -f mp3 mp3/testdata/mp3_22k_mono.mp3
ff -f lavfi -i sine=frequency=440:sample_rate=8000 -ac 1 -t 0.2 -c:a libmp3lame -b:a 16k -id3v2_version 0 -write_xing 0 -f mp3 mp3/testdata/mp3_8k_mono.mp3
ff -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 2 -t 0.1 -c:a mp2 -b:a 192k -f mp2 mp3/testdata/mp2_48k_stereo.mp2
