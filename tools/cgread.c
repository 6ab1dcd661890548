// Reference floor for scripts/bench-floor.sh: the cost of the reads alone.
// Copied unchanged from the project's measuring tools; mode 2 keeps every
// file open and preads it at offset 0 once per sweep.
// cgread: raw cost of reading cgroup v1 + /proc/<pid>/net/dev files per container.
// usage: cgread IDFILE SWEEPS MODE
//   IDFILE: one full container id per line ("-" = all dirs under /sys/fs/cgroup/memory/docker)
//   MODE 0: open/read-until-EOF/close per file   (read() returning 0 ends the loop)
//   MODE 1: open/one read()/close per file        (trusts a short read as complete)
//   MODE 3: like MODE 0, plus per-file-kind timing breakdown (adds clock_gettime overhead)
//   MODE 2: files opened once at discovery, each sweep pread(fd, buf, sz, 0) once
// SWEEPS=0 does discovery only (for strace differencing). One warm-up sweep precedes the timed ones.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <time.h>
#include <sys/resource.h>

#define NF 11
static const char *F[NF][2] = {
  {"memory","memory.stat"},{"memory","memory.usage_in_bytes"},{"memory","memory.limit_in_bytes"},
  {"cpuacct","cpuacct.usage"},{"cpuacct","cpuacct.stat"},{"cpuacct","cpuacct.usage_percpu"},
  {"cpu","cpu.stat"},{"blkio","blkio.throttle.io_service_bytes"},{"blkio","blkio.throttle.io_serviced"},
  {"pids","pids.current"},{NULL,"net/dev"}};
typedef struct { char id[65]; int pid; char path[NF][256]; int fd[NF]; } cont;
static cont C[4096]; static int nc;
static char buf[65536];
static long long bytes;

static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static double cpu(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec*1e-6+r.ru_stime.tv_sec+r.ru_stime.tv_usec*1e-6;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}

static void add(const char *id){
  cont *c=&C[nc]; char p[256]; snprintf(c->id,sizeof c->id,"%s",id);
  snprintf(p,sizeof p,"/sys/fs/cgroup/pids/docker/%s/cgroup.procs",id);
  int fd=open(p,O_RDONLY); if(fd<0) return; int n=read(fd,buf,sizeof buf-1); close(fd);
  if(n<=0) return;
  buf[n]=0; c->pid=atoi(buf);
  if(c->pid<=0) return;   // not running
  for(int f=0;f<NF;f++){
    if(F[f][0]) snprintf(c->path[f],256,"/sys/fs/cgroup/%s/docker/%s/%s",F[f][0],id,F[f][1]);
    else snprintf(c->path[f],256,"/proc/%d/%s",c->pid,F[f][1]);
    c->fd[f]=-1;
  }
  nc++;
}

static double pf[NF];   // mode 3: accumulated seconds per file kind
static void sweep(int mode){
  for(int i=0;i<nc;i++) for(int f=0;f<NF;f++){
    cont *c=&C[i]; ssize_t n;
    if(mode==3){ double a=now(); int fd=open(c->path[f],O_RDONLY|O_CLOEXEC);
      while((n=read(fd,buf,sizeof buf))>0) bytes+=n;
      close(fd); pf[f]+=now()-a; continue; }
    if(mode==2){ n=pread(c->fd[f],buf,sizeof buf,0); if(n>0) bytes+=n; continue; }
    int fd=open(c->path[f],O_RDONLY|O_CLOEXEC); if(fd<0){perror(c->path[f]);continue;}
    if(mode==1){ n=read(fd,buf,sizeof buf); if(n>0) bytes+=n; }
    else while((n=read(fd,buf,sizeof buf))>0) bytes+=n;
    close(fd);
  }
}

int main(int argc,char**argv){
  if(argc<4){fprintf(stderr,"usage: %s IDFILE|- SWEEPS MODE\n",argv[0]);return 2;}
  int sweeps=atoi(argv[2]), mode=atoi(argv[3]);
  if(strcmp(argv[1],"-")==0){
    DIR*d=opendir("/sys/fs/cgroup/memory/docker"); struct dirent*e;
    while((e=readdir(d))) if(strlen(e->d_name)==64) add(e->d_name);
    closedir(d);
  } else {
    FILE*fp=fopen(argv[1],"r"); char l[256];
    while(fgets(l,sizeof l,fp)){ l[strcspn(l,"\n")]=0; if(strlen(l)==64) add(l); }
    fclose(fp);
  }
  if(mode==2) for(int i=0;i<nc;i++) for(int f=0;f<NF;f++){
    C[i].fd[f]=open(C[i].path[f],O_RDONLY|O_CLOEXEC); if(C[i].fd[f]<0) perror(C[i].path[f]); }
  if(sweeps==0){ printf("discovery only: %d containers\n",nc); return 0; }
  double t0=now(); sweep(mode); double cold=now()-t0;      // warm-up / first sweep
  double *w=malloc(sizeof(double)*sweeps); bytes=0;
  double c0=cpu();
  for(int s=0;s<sweeps;s++){ double a=now(); sweep(mode); w[s]=now()-a; }
  double cpus=(cpu()-c0)/sweeps;
  qsort(w,sweeps,sizeof(double),cmpd);
  double med=sweeps%2?w[sweeps/2]:(w[sweeps/2-1]+w[sweeps/2])/2;
  printf("mode %d containers %d files/container %d sweeps %d | first sweep %.1f us | median sweep %.1f us (min %.1f max %.1f) | "
         "per container: median %.2f us, cpu(user+sys) %.2f us | bytes/sweep %lld\n",
         mode,nc,NF,sweeps,cold*1e6,med*1e6,w[0]*1e6,w[sweeps-1]*1e6,
         nc?med*1e6/nc:0, nc?cpus*1e6/nc:0, bytes/sweeps);
  if(mode==3){ for(int f=0;f<NF;f++) printf("  %-34s %.2f us/container (mean over all sweeps incl. warm-up)\n",F[f][1],
                 pf[f]/(sweeps+1)/nc*1e6); }
  return 0;
}
